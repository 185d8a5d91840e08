"""FMB's action space and its Cartesian impedance controller (pure numpy, backend-agnostic).

Actions (10 Hz) are 7-D: a translation delta [m] and a rotation-vector delta [rad], both in the
robot base frame, then a binary gripper command (>= 0.5 closes). The deltas are clipped per
component to the limits of `sim.limits` (FMB's per-step clip) and applied to the *measured*
TCP pose, as on FMB's robot (SERL's Franka environment), so a blocked arm never winds up.

The controller runs at the physics rate. With pose error e (clipped to 7 mm / 0.04 rad per
component) and TCP twist v = J dq, it commands

    tau = J^T (-K e - D v) + N (k_n (q_n - q) - d_n dq) + bias

with K = diag(2000 N/m x3, 150 N m/rad x3), D = diag(89 x3, 7 x3) (FMB's gains), N the
null-space projector of J^T and `bias` the backend's gravity + Coriolis torques.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from fmb_core.errors import check_range
from sim.exceptions import ActionError
from sim.limits import DEFAULT_ACTION_LIMITS, ActionLimits
from sim.spatial import rotation_error

ACTION_DIM = 7


class ParsedAction(NamedTuple):
    """A validated action.

    Attributes:
        delta: (6,) float, clipped translation [m] + rotation vector [rad], base frame.
        close_gripper: True to close.
    """

    delta: np.ndarray
    close_gripper: bool


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """The 7-D action of one 10 Hz step.

    Attributes:
        limits: per-component limits of the translation [m] and rotation-vector [rad] deltas
            (`sim.limits`, shared with the safety filter and selection).
    """

    limits: ActionLimits = DEFAULT_ACTION_LIMITS

    def parse(self, action) -> ParsedAction:
        """Validate and clip `action` (7,); ActionError for a wrong shape or NaN/inf.

        A malformed action is never clipped into a valid one: it is refused.
        """
        a = np.asarray(action, dtype=float)
        if a.shape != (ACTION_DIM,):
            raise ActionError(f"action must have shape ({ACTION_DIM},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ActionError(f"action has NaN or inf: {a.tolist()}")
        return ParsedAction(self.limits.clip_delta(a[:6]), bool(a[6] >= 0.5))

    def low(self) -> np.ndarray:
        """(7,) lower bounds."""
        return np.append(self.limits.low(), 0.0)

    def high(self) -> np.ndarray:
        """(7,) upper bounds."""
        return np.append(self.limits.high(), 1.0)


@dataclasses.dataclass(frozen=True)
class ImpedanceGains:
    """Cartesian impedance parameters (FMB / SERL defaults).

    Attributes:
        translational_stiffness: [N/m].
        translational_damping: [N s/m].
        rotational_stiffness: [N m/rad].
        rotational_damping: [N m s/rad].
        translational_clip: per-component pose-error clip [m].
        rotational_clip: per-component orientation-error clip [rad].
        nullspace_stiffness: pull towards the rest posture [N m/rad].
        nullspace_damping: [N m s/rad].
    """

    translational_stiffness: float = 2000.0
    translational_damping: float = 89.0
    rotational_stiffness: float = 150.0
    rotational_damping: float = 7.0
    translational_clip: float = 0.007
    rotational_clip: float = 0.04
    nullspace_stiffness: float = 5.0
    nullspace_damping: float = 1.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_range(f.name, getattr(self, f.name), 0.0, 1e5)


class CartesianImpedance:
    """Joint torques that pull the TCP towards a target pose (see module docstring)."""

    def __init__(self, gains: ImpedanceGains = ImpedanceGains(), torque_limits=None):
        g = gains
        self.gains = gains
        self.stiffness = np.array([g.translational_stiffness] * 3 + [g.rotational_stiffness] * 3)
        self.damping = np.array([g.translational_damping] * 3 + [g.rotational_damping] * 3)
        self.clip = np.array([g.translational_clip] * 3 + [g.rotational_clip] * 3)
        self.torque_limits = None if torque_limits is None else np.asarray(torque_limits, float)
        self._damping6 = 1e-6 * np.eye(6)
        self._eyes: dict[int, np.ndarray] = {}

    def _eye(self, n: int) -> np.ndarray:
        if n not in self._eyes:
            self._eyes[n] = np.eye(n)
        return self._eyes[n]

    def pose_error(self, tcp_pose: np.ndarray, target_pose: np.ndarray) -> np.ndarray:
        """(6,) clipped error current - target: position [m], rotation vector [rad], base frame."""
        e = np.empty(6)
        e[:3] = tcp_pose[:3] - target_pose[:3]
        e[3:] = -rotation_error(tcp_pose[3:], target_pose[3:])
        return np.clip(e, -self.clip, self.clip)

    def torques(
        self,
        tcp_pose: np.ndarray,
        target_pose: np.ndarray,
        jacobian: np.ndarray,
        q: np.ndarray,
        dq: np.ndarray,
        q_rest: np.ndarray,
        bias: np.ndarray,
    ) -> np.ndarray:
        """Joint torques [N m], (n,).

        Args:
            tcp_pose: (7,) measured TCP pose, base frame.
            target_pose: (7,) equilibrium pose, base frame.
            jacobian: (6, n) TCP Jacobian in the base frame, rows [linear; angular].
            q, dq: (n,) joint positions [rad] and velocities [rad/s].
            q_rest: (n,) null-space rest posture [rad].
            bias: (n,) gravity + Coriolis torques to compensate [N m].
        """
        g = self.gains
        twist = jacobian @ dq
        wrench = -self.stiffness * self.pose_error(tcp_pose, target_pose) - self.damping * twist
        tau = jacobian.T @ wrench
        # Null-space projector I - (J+ J)^T with a damped pseudo-inverse J+ = J^T (J J^T + l I)^-1;
        # J+ J = J^T (J J^T + l I)^-1 J is symmetric, so no transpose is needed.
        null = self._eye(len(q)) - jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + self._damping6, jacobian)
        tau += null @ (g.nullspace_stiffness * (q_rest - q) - g.nullspace_damping * dq)
        tau += bias
        if self.torque_limits is not None:
            tau = np.clip(tau, -self.torque_limits, self.torque_limits)
        return tau
