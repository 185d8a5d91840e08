"""The retreat before a regrasp as the task executor moves it: `sim.experts.chain.retreat_path`
planned into equilibrium poses, one per control period (FMB's 10 Hz), without ROS.

    move = RetreatMove.plan(tcp)       # from the measured TCP (7,) [m, xyzw], base frame
    pose = move.next(tcp)              # each tick: the pose to command, None once it is over
    move.reached                       # whether it ended within RETREAT_REACHED of its end

The path is the chain's (`fmb eval` runs the same one before regrasp, `ChainController(retreat=...)`):
RETREAT_BACK along the hand's axis out of the peg it let go of, up to RETREAT's height, then to
RETREAT pointing down. Each leg is sampled so that a step moves at most RETREAT_SPEED [m] and turns
at most the robot's per-command rotation limit (`sim.limits.DEFAULT_ACTION_LIMITS`), orientation by
slerp. After the last pose the move waits for the hand to settle within RETREAT_REACHED of it, or
RETREAT_STEPS ticks (as the chain hands over after that many steps on a waypoint).
"""

from __future__ import annotations

import math

import numpy as np

from fmb_core.errors import ParameterError
from sim.experts.chain import RETREAT_REACHED, RETREAT_SPEED, RETREAT_STEPS, retreat_path


def retreat_poses(tcp) -> np.ndarray:
    """(K, 7) equilibrium poses [m, xyzw] in the base frame from the TCP pose `tcp` (7,) along
    `retreat_path(tcp)`, one per control period; the last is the path's end."""
    from scipy.spatial.transform import Rotation, Slerp

    from sim.limits import DEFAULT_ACTION_LIMITS

    tcp = np.asarray(tcp, float)
    if tcp.shape != (7,) or not np.all(np.isfinite(tcp)) or np.linalg.norm(tcp[3:]) < 1e-6:
        raise ParameterError(f"tcp must be 7 finite numbers with a non-zero quaternion, got {tcp.tolist()}")
    turn = DEFAULT_ACTION_LIMITS.max_step_rotation  # [rad] per step
    legs = [tcp, *retreat_path(tcp)]
    out = []
    for a, b in zip(legs[:-1], legs[1:]):
        ends = Rotation.from_quat([a[3:], b[3:]])
        angle = (ends[0].inv() * ends[1]).magnitude()  # [rad]
        distance = float(np.linalg.norm(b[:3] - a[:3]))  # [m]
        steps = max(1, math.ceil(max(distance / RETREAT_SPEED, angle / turn) - 1e-9))
        s = np.arange(1, steps + 1) / steps  # (steps,)
        positions = a[:3] + s[:, None] * (b[:3] - a[:3])  # (steps, 3)
        out.append(np.hstack([positions, Slerp([0.0, 1.0], ends)(s).as_quat()]))
    return np.vstack(out)


class RetreatMove:
    """See module docstring. `poses` (K, 7) are commanded one per `next` call."""

    def __init__(self, poses: np.ndarray):
        self.poses = np.asarray(poses, float)
        self.sent = 0
        self.settle = 0
        self.reached = False

    @classmethod
    def plan(cls, tcp) -> RetreatMove:
        return cls(retreat_poses(tcp))

    @property
    def end(self) -> np.ndarray:
        return self.poses[-1].copy()

    def next(self, tcp) -> np.ndarray | None:
        """The pose (7,) to command this tick, given the measured TCP pose `tcp` (7,); the last pose
        again while the hand settles; None once it is within RETREAT_REACHED [m] of the end
        (`reached`) or has settled for RETREAT_STEPS ticks."""
        if self.sent < len(self.poses):
            self.sent += 1
            return self.poses[self.sent - 1].copy()
        self.reached = float(np.linalg.norm(np.asarray(tcp, float)[:3] - self.poses[-1, :3])) <= RETREAT_REACHED
        if self.reached or self.settle >= RETREAT_STEPS:
            return None
        self.settle += 1
        return self.poses[-1].copy()
