"""Inverse kinematics for resets: damped least squares on the backend's forward kinematics.

Only used to place the arm at the start of an episode (a joint configuration whose TCP is at a
requested pose); during an episode the arm moves under impedance control.
"""

from __future__ import annotations

import numpy as np

from sim.exceptions import SimError
from sim.spatial import rotation_error


def solve_ik(
    forward,
    target: np.ndarray,
    q0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    q_rest: np.ndarray | None = None,
    tolerance: float = 1e-4,
    iterations: int = 500,
    damping: float = 1e-3,
) -> np.ndarray:
    """Joint positions [rad] whose TCP reaches `target` (7,) within `tolerance` [m, rad].

    Args:
        forward: q -> (tcp_pose (7,), jacobian (6, n)), e.g. `Backend.forward_kinematics`.
        target: (7,) TCP pose in the base frame.
        q0: (n,) start configuration [rad].
        lower, upper: (n,) joint limits [rad].
        q_rest: (n,) posture preferred in the null space (default q0).
        tolerance: largest position [m] / rotation [rad] error accepted.
        iterations: Gauss-Newton steps before giving up.
        damping: Levenberg-Marquardt damping.

    Raises:
        SimError: when the pose is not reached (out of reach or at a joint limit).
    """
    q = np.clip(np.asarray(q0, float).copy(), lower, upper)
    q_rest = q.copy() if q_rest is None else np.asarray(q_rest, float)
    err = np.zeros(6)
    for _ in range(iterations):
        tcp, jac = forward(q)
        err[:3] = target[:3] - tcp[:3]
        err[3:] = rotation_error(tcp[3:], target[3:])
        if np.all(np.abs(err[:3]) < tolerance) and np.all(np.abs(err[3:]) < tolerance):
            return q
        jjt = jac @ jac.T + damping * np.eye(6)
        dq = jac.T @ np.linalg.solve(jjt, err)
        if np.max(np.abs(err)) > 1e-2:  # steer the posture only while far: the damped
            null = np.eye(len(q)) - jac.T @ np.linalg.solve(jjt, jac)  # projector leaks a little
            dq += null @ (0.1 * (q_rest - q))
        q = np.clip(q + np.clip(dq, -0.2, 0.2), lower, upper)
    raise SimError(
        f"inverse kinematics did not reach the pose {np.round(target, 4).tolist()} "
        f"(error {np.round(err, 4).tolist()}): out of reach?"
    )
