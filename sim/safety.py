"""The safety filter in the command path of every skill (ROS or not): pure numpy, no ROS.

    limits = SafetyLimits()                       # FMB's per-command limits and the simulated workspace
    safety = SafetyFilter(limits)
    cmd = safety.filter(target, close, measured_tcp, observation_stamp=t_obs, now=t)
    if cmd.pose is not None: publish(cmd.pose, cmd.close_gripper)

Every command is an absolute TCP target (7,): position [m] + quaternion xyzw in the robot base
frame, plus a binary gripper command. The filter, in order:

1. emergency stop: latched by `engage_stop()` until `release_stop()`; the arm holds.
2. watchdog: no observation yet, or the newest one older than `observation_timeout` [s]: hold.
3. rejection: a target with NaN/inf, a wrong shape or a zero quaternion is refused (never clipped
   into a valid one); the arm holds for that cycle.
4. limiting, the simulator's rule (`sim.limits`, after FMB's robot): the step from the measured TCP
   pose is clipped per component to `max_step_translation` [m] / `max_step_rotation` [rad] and to the
   speed limits times the time since the last command, then the position is clipped into the
   workspace box. At 10 Hz the command is the one `sim.env.FmbEnv.step` would track for the same step.

"Hold" means: command the measured TCP pose from the moment holding began (latched while it lasts),
with the gripper as last commanded (a held part is not dropped). Before any observation there is no
pose to hold, and the filter returns no pose at all (publish nothing).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import NamedTuple

import numpy as np

from fmb_core.errors import check_range
from sim.limits import DEFAULT_ACTION_LIMITS, DEFAULT_WORKSPACE, ActionLimits, Workspace, limit_pose
from sim.spatial import apply_delta


@dataclasses.dataclass(frozen=True)
class SafetyLimits:
    """Limits of the safety filter, flat as the skill server's ROS parameters; the defaults are
    `sim.limits.DEFAULT_WORKSPACE` and `DEFAULT_ACTION_LIMITS` (see those for the meaning).

    Attributes:
        workspace_low, workspace_high: (3,) corners of the allowed TCP box [m], base frame.
        max_step_translation: per-component limit of the TCP move per command [m].
        max_step_rotation: per-component limit of the TCP turn (rotation vector) per command [rad].
        max_linear_speed: each translation component is also at most this times the time since the
            previous command [m/s].
        max_angular_speed: the same for rotation [rad/s].
        observation_timeout: hold when the newest observation is older than this [s].
    """

    workspace_low: tuple[float, float, float] = DEFAULT_WORKSPACE.low
    workspace_high: tuple[float, float, float] = DEFAULT_WORKSPACE.high
    max_step_translation: float = DEFAULT_ACTION_LIMITS.max_step_translation
    max_step_rotation: float = DEFAULT_ACTION_LIMITS.max_step_rotation
    max_linear_speed: float = DEFAULT_ACTION_LIMITS.max_linear_speed
    max_angular_speed: float = DEFAULT_ACTION_LIMITS.max_angular_speed
    observation_timeout: float = 0.5

    def __post_init__(self):
        # Both constructors check their fields and name them as the ROS parameters are named.
        object.__setattr__(self, "_workspace", Workspace(self.workspace_low, self.workspace_high))
        object.__setattr__(
            self,
            "_actions",
            ActionLimits(
                self.max_step_translation, self.max_step_rotation, self.max_linear_speed, self.max_angular_speed
            ),
        )
        check_range("observation_timeout", self.observation_timeout, 0.01, 10.0, unit="s")

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    @property
    def actions(self) -> ActionLimits:
        return self._actions

    def in_workspace(self, position) -> bool:
        return self._workspace.contains(position)


class Verdict(str, enum.Enum):
    """What the filter did with a command."""

    PASSED = "passed"  # sent as asked
    LIMITED = "limited"  # sent, clipped to the step/speed limits and/or into the workspace
    REJECTED = "rejected"  # refused (non-finite, malformed): holding
    STALE = "stale"  # the watchdog fired: holding
    STOPPED = "stopped"  # the emergency stop is engaged: holding
    LATE = "late"  # the controller's next action is not ready (a late policy chunk): holding


class SafeCommand(NamedTuple):
    """The filter's output.

    Attributes:
        pose: (7,) TCP target to send [m, xyzw], or None when there is nothing safe to send.
        close_gripper: gripper command to send.
        verdict: what happened (see Verdict).
        reason: a sentence for status messages ("" when passed).
    """

    pose: np.ndarray | None
    close_gripper: bool
    verdict: Verdict
    reason: str

    @property
    def holding(self) -> bool:
        return self.verdict in (Verdict.REJECTED, Verdict.STALE, Verdict.STOPPED, Verdict.LATE)


class SafetyFilter:
    """See module docstring. One filter per commanded arm; not thread-safe (call from one thread)."""

    def __init__(self, limits: SafetyLimits = SafetyLimits()):
        self.limits = limits
        self.stop_reason = ""
        self._hold_pose: np.ndarray | None = None
        self._last_close = False
        self._last_time: float | None = None

    # -- emergency stop --------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return bool(self.stop_reason)

    def engage_stop(self, reason: str = "emergency stop") -> None:
        """Latch the emergency stop: every command holds until `release_stop()`."""
        self.stop_reason = reason or "emergency stop"

    def release_stop(self) -> None:
        self.stop_reason = ""

    # -- filtering -------------------------------------------------------------------------------
    def hold(self, measured_pose, verdict: Verdict, reason: str) -> SafeCommand:
        """Hold still: the measured pose latched when holding began (None without one)."""
        if self._hold_pose is None and measured_pose is not None and _finite_pose(measured_pose):
            self._hold_pose = _normalized(measured_pose)
        pose = None if self._hold_pose is None else self._hold_pose.copy()
        return SafeCommand(pose, self._last_close, verdict, reason)

    def stay(self, measured_pose) -> SafeCommand | None:
        """A one-off command to stop where the arm is (the measured pose, the gripper as last
        commanded), for a skill that ends or is canceled; None without a finite measured pose."""
        if measured_pose is None or not _finite_pose(measured_pose):
            return None
        self._hold_pose = None
        return SafeCommand(_normalized(measured_pose), self._last_close, Verdict.PASSED, "")

    def check_ready(self, measured_pose, observation_stamp: float | None, now: float) -> SafeCommand | None:
        """None when commands may pass (no stop, fresh finite observation); else the hold command.
        Call it before asking a controller for an action, so that a held arm does not advance it."""
        if self.stopped:
            return self.hold(measured_pose, Verdict.STOPPED, f"emergency stop engaged: {self.stop_reason}")
        if measured_pose is None or observation_stamp is None:
            return self.hold(None, Verdict.STALE, "no observation received yet")
        age = now - observation_stamp
        if not age <= self.limits.observation_timeout:
            hint = " (clocks differ? nodes reading simulated stamps need use_sim_time:=true)" if age > 1e3 else ""
            return self.hold(
                measured_pose,
                Verdict.STALE,
                f"observation is {age:.3f} s old (observation_timeout {self.limits.observation_timeout:g} s){hint}",
            )
        if not _finite_pose(measured_pose):
            return self.hold(None, Verdict.STALE, "measured TCP pose is not finite")
        return None

    def filter(
        self,
        target_pose,
        close_gripper: bool,
        measured_pose,
        observation_stamp: float | None,
        now: float,
    ) -> SafeCommand:
        """Make one command safe.

        Args:
            target_pose: (7,) asked TCP target [m, xyzw], base frame (any array-like; checked here).
            close_gripper: asked gripper command.
            measured_pose: (7,) newest measured TCP pose, or None before any observation.
            observation_stamp: time of that observation [s], or None.
            now: current time [s], same clock as `observation_stamp`.
        """
        lim = self.limits
        held = self.check_ready(measured_pose, observation_stamp, now)
        if held is not None:
            return held
        try:
            target = np.asarray(target_pose, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            return self.hold(measured_pose, Verdict.REJECTED, f"target is not numeric: {target_pose!r}")
        if target.shape != (7,):
            return self.hold(measured_pose, Verdict.REJECTED, f"target must have 7 values, got {target.size}")
        if not np.all(np.isfinite(target)):
            return self.hold(measured_pose, Verdict.REJECTED, f"target has NaN/inf: {np.round(target, 4).tolist()}")
        if np.linalg.norm(target[3:]) < 1e-6:
            return self.hold(measured_pose, Verdict.REJECTED, "target quaternion is zero")
        measured = _normalized(measured_pose)
        target = _normalized(target)
        dt = lim.observation_timeout if self._last_time is None else max(now - self._last_time, 0.0)
        out = limit_pose(measured, target, lim.actions, lim.workspace, dt)
        self._hold_pose = None
        self._last_close = bool(close_gripper)
        self._last_time = now
        reasons = []
        if out.step_limited:
            move, turn = lim.actions.step_bounds(dt)
            reasons.append(f"step limited to {move:.3f} m / {turn:.3f} rad per axis")
        if out.clipped:
            reasons.append(
                f"target position {np.round(target[:3], 4).tolist()} m clipped into the workspace "
                f"[{list(lim.workspace_low)}, {list(lim.workspace_high)}] m"
            )
        if reasons:
            return SafeCommand(out.pose, self._last_close, Verdict.LIMITED, "; ".join(reasons))
        return SafeCommand(out.pose, self._last_close, Verdict.PASSED, "")

    def filter_action(self, action, measured_pose, observation_stamp: float | None, now: float) -> SafeCommand:
        """Make a policy's delta `action` (7,) (translation [m], rotation vector [rad], gripper >= 0.5 =
        close) safe: the absolute target it asks for about `measured_pose` through `filter`. A
        malformed or non-finite action goes to the filter as it is, which refuses it naming why.
        The one rule of the simulated robot loop (`policies.runtime.perceived`) and the ROS skill server."""
        action = np.asarray(action, dtype=float).reshape(-1)
        if action.shape == (7,) and np.all(np.isfinite(action[:6])) and _finite_pose(measured_pose):
            return self.filter(
                apply_delta(np.asarray(measured_pose, float), action[:6]),
                bool(action[6] >= 0.5),
                measured_pose,
                observation_stamp,
                now,
            )
        return self.filter(action, False, measured_pose, observation_stamp, now)


def _finite_pose(p) -> bool:
    a = np.asarray(p, dtype=float).reshape(-1)
    return a.shape == (7,) and bool(np.all(np.isfinite(a))) and np.linalg.norm(a[3:]) > 1e-6


def _normalized(p) -> np.ndarray:
    a = np.asarray(p, dtype=float).reshape(-1).copy()
    a[3:] /= np.linalg.norm(a[3:])
    return a
