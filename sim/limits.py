"""FMB's per-command action limits and the TCP workspace: the one definition of both.

    from sim.limits import DEFAULT_ACTION_LIMITS, DEFAULT_WORKSPACE, limit_pose
    delta = DEFAULT_ACTION_LIMITS.clip_delta(action[:6])          # the simulator's action path
    out = limit_pose(measured_tcp, target, DEFAULT_ACTION_LIMITS, DEFAULT_WORKSPACE)  # the safety filter

The simulator's action space (`sim.controller.ActionSpec`, `sim.env.FmbEnv`), the safety filter in every
ROS command path (`sim.safety.SafetyFilter`, whose ROS parameter defaults come from here) and the
candidate filter of preference selection (`policies.preference.select`) all use these two objects.

The rule is FMB's robot's (rail-berkeley/fmb `robot_infra/envs/franka_fmb_env.py`, `FrankaFMB.step`
and `clip_safety_box`; SERL's `serl_robot_infra/franka_env/envs/franka_env.py`, `FrankaEnv`, has the
same two steps):

1. **Per component, not by norm.** `step` does `action = np.clip(action, self.action_space.low,
   self.action_space.high)` with `action_space = Box((-0.06, -0.06, -0.06, -0.25, -0.25, -0.25, 0),
   (0.06, 0.06, 0.06, 0.25, 0.25, 0.25, 1))`. A (5, 5, 5) cm step passes whole (8.7 cm); (10, 0, 0) cm
   becomes 6 cm.
2. **Then clip into the box, do not refuse.** The clipped step moves the *measured* pose
   (`nextpos[:3] = currpos[:3] + a`), and `nextpos = self.clip_safety_box(nextpos)` clips it into the
   box: `pose[:3] = np.clip(pose[:3], self.xyz_bounding_box.low, self.xyz_bounding_box.high)`.

Where we differ from FMB's code, on purpose: the rotation delta is a rotation vector in the base frame
(FMB: `Rotation.from_euler("xyz", action[3:6]) * Rotation.from_quat(currpos[3:])`; the same for small
steps); there is no orientation box (FMB also clamps roll/pitch/yaw per skill mode; the simulator never
had one); and the per-axis speed limits below, which only bind when commands come faster than 10 Hz
(the ROS filter; at 10 Hz they equal the step limits).

Refused, never clipped into a valid command: a target of the wrong shape, with NaN/inf, or with a zero
quaternion (there is no nearest valid command, and it means the producer is broken). A finite target
far outside the box is clipped like any other (the step limit bounds the motion of every command);
goals, where a wrong frame or unit enters, are refused when outside the box (`fmb_ros.skill`).
When the measured TCP is itself outside the box (pushed out, or a box tightened at run time), the
clipped command lies on the box surface and may be further than the step limit, as on FMB's robot;
the impedance controller's error clip (7 mm / 0.04 rad, `sim.controller.ImpedanceGains`) bounds the pull.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError, check_range

_TOL = 1e-9  # [m] / [rad]: a delta this far over a limit still counts as within it (float round-off)


@dataclasses.dataclass(frozen=True)
class ActionLimits:
    """Largest TCP motion per command, per base-frame axis (see module docstring).

    Attributes:
        max_step_translation: limit of each translation component per command [m] (FMB: 0.06).
        max_step_rotation: limit of each rotation-vector component per command [rad] (FMB: 0.25).
        max_linear_speed: each translation component is also at most this times the time since the
            previous command [m/s] (at 10 Hz: the step limit).
        max_angular_speed: the same for rotation [rad/s].
    """

    max_step_translation: float = 0.06
    max_step_rotation: float = 0.25
    max_linear_speed: float = 0.6
    max_angular_speed: float = 2.5

    def __post_init__(self):
        check_range("max_step_translation", self.max_step_translation, 1e-4, 0.2, unit="m")
        check_range("max_step_rotation", self.max_step_rotation, 1e-3, 1.0, unit="rad")
        check_range("max_linear_speed", self.max_linear_speed, 1e-3, 2.0, unit="m/s")
        check_range("max_angular_speed", self.max_angular_speed, 1e-2, 6.0, unit="rad/s")

    def step_bounds(self, dt: float | None = None) -> tuple[float, float]:
        """(translation [m], rotation [rad]) per-axis bounds of a command `dt` [s] after the previous
        one; None: the step limits alone (one action of the simulator)."""
        if dt is None:
            return self.max_step_translation, self.max_step_rotation
        dt = max(float(dt), 0.0)
        return (
            min(self.max_step_translation, self.max_linear_speed * dt),
            min(self.max_step_rotation, self.max_angular_speed * dt),
        )

    def low(self) -> np.ndarray:
        """(6,) lower bounds of a delta: translation [m] x3, rotation vector [rad] x3."""
        return -self.high()

    def high(self) -> np.ndarray:
        """(6,) upper bounds of a delta."""
        return np.array([self.max_step_translation] * 3 + [self.max_step_rotation] * 3)

    def clip_delta(self, delta, dt: float | None = None) -> np.ndarray:
        """(6,) `delta` (translation [m] + rotation vector [rad], base frame) clipped per component."""
        move, turn = self.step_bounds(dt)
        d = np.asarray(delta, dtype=float)
        return np.concatenate([np.clip(d[:3], -move, move), np.clip(d[3:6], -turn, turn)])

    def delta_within(self, deltas) -> np.ndarray:
        """(...) bool: which deltas (..., 6) need no clipping (NaN is not within)."""
        d = np.abs(np.asarray(deltas, dtype=float))
        return np.all(d[..., :3] <= self.max_step_translation + _TOL, axis=-1) & np.all(
            d[..., 3:6] <= self.max_step_rotation + _TOL, axis=-1
        )


@dataclasses.dataclass(frozen=True)
class Workspace:
    """The box the TCP position must stay in.

    Attributes:
        low, high: (3,) corners [m] in the robot base frame (REP-105 `base_link`; `panda_link0`).
    """

    low: tuple[float, float, float] = (0.2, -0.45, 0.0)
    high: tuple[float, float, float] = (0.85, 0.45, 0.6)

    def __post_init__(self):
        try:
            low = np.asarray(self.low, dtype=float).reshape(-1)
            high = np.asarray(self.high, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ParameterError(
                f"workspace_low {self.low!r} and workspace_high {self.high!r} must be numbers"
            ) from None
        if low.shape != (3,) or high.shape != (3,):
            raise ParameterError(
                f"workspace_low and workspace_high must have 3 values each [m], got {low.tolist()} and {high.tolist()}"
            )
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
            raise ParameterError(
                f"workspace_low {low.tolist()} must be finite and below workspace_high {high.tolist()} [m] per axis"
            )
        object.__setattr__(self, "low", tuple(float(v) for v in low))
        object.__setattr__(self, "high", tuple(float(v) for v in high))

    def contains(self, position) -> bool:
        """Whether `position` (3,) [m] is inside the box (faces included)."""
        p = np.asarray(position, dtype=float)
        return bool(np.all(p >= self.low) and np.all(p <= self.high))

    def clip(self, position) -> np.ndarray:
        """(3,) `position` [m] clipped into the box."""
        return np.clip(np.asarray(position, dtype=float), self.low, self.high)

    def shrunk(self, margin: float) -> Workspace:
        """The box moved in by `margin` [m] on every face; ParameterError when nothing is left."""
        check_range("margin", margin, 0.0, 0.2, unit="m")
        low, high = np.add(self.low, margin), np.subtract(self.high, margin)
        if np.any(low >= high):
            raise ParameterError(f"workspace box {self.low}..{self.high} is empty after the margin {margin:g} m")
        return Workspace(tuple(low), tuple(high))


DEFAULT_ACTION_LIMITS = ActionLimits()
"""FMB's limits: 0.06 m and 0.25 rad per component per 10 Hz command."""

DEFAULT_WORKSPACE = Workspace()
"""The simulated table's TCP box [m], base frame."""


class LimitedPose(NamedTuple):
    """`limit_pose`'s result.

    Attributes:
        pose: (7,) TCP target to command: position [m] + unit quaternion xyzw, base frame.
        step_limited: a component of the step was clipped to the step (or speed) limit.
        clipped: the position was clipped into the workspace.
    """

    pose: np.ndarray
    step_limited: bool
    clipped: bool


def limit_pose(
    measured: np.ndarray,
    target: np.ndarray,
    actions: ActionLimits = DEFAULT_ACTION_LIMITS,
    workspace: Workspace = DEFAULT_WORKSPACE,
    dt: float | None = None,
) -> LimitedPose:
    """An absolute TCP target made to obey the rule of the module docstring: the step from `measured`
    clipped per component (`actions.clip_delta`), then the position clipped into `workspace`.

    Args:
        measured: (7,) measured TCP pose [m, unit xyzw], base frame.
        target: (7,) asked TCP target [m, unit xyzw], base frame (finite; refusals are the caller's).
        dt: time since the previous command [s] for the speed limits, or None (step limits only).

    The rotation step is the rotation vector of target * measured^-1 (base frame), so a target turned
    by more than pi [rad] is read the short way round; a simulator action's delta is clipped as given.
    """
    measured = np.asarray(measured, dtype=float)
    out = np.asarray(target, dtype=float).copy()
    r_measured = Rotation.from_quat(measured[3:])
    step = np.concatenate([out[:3] - measured[:3], (Rotation.from_quat(out[3:]) * r_measured.inv()).as_rotvec()])
    clipped_step = actions.clip_delta(step, dt)
    over = np.abs(clipped_step - step) > _TOL
    if over[:3].any():
        out[:3] = measured[:3] + clipped_step[:3]
    if over[3:].any():
        out[3:] = (Rotation.from_rotvec(clipped_step[3:]) * r_measured).as_quat()
    inside = workspace.clip(out[:3])
    clipped = bool(np.any(inside != out[:3]))
    out[:3] = inside
    return LimitedPose(out, bool(over.any()), clipped)
