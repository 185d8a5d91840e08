"""Panda kinematics for a skill node: forward and inverse, from the same robot model as the simulator.

A skill node has no simulator, but scripted experts plan with inverse kinematics (the
place_on_fixture expert checks its approach path with it). This builds the MuJoCo model of the arm
alone (no objects, no cameras) and answers `forward(q)` and `inverse(pose, ...)` the way
`sim.env.FmbEnv.inverse_kinematics` does. On a real robot it is the same Panda model.
"""

from __future__ import annotations

import numpy as np


class PandaKinematics:
    """Forward and inverse kinematics of the Panda's TCP in the base frame."""

    def __init__(self):
        from sim import panda
        from sim.backend import make_backend
        from sim.scene import PhysicsConfig, SceneSpec

        self._backend = make_backend("mujoco")
        self._backend.load(SceneSpec([], cameras=(), physics=PhysicsConfig()))
        self.lower, self.upper = panda.arm_joint_limits()

    def forward(self, q) -> tuple[np.ndarray, np.ndarray]:
        """TCP pose (7,) [m, xyzw] and Jacobian (6, 7) at arm joints `q` (7,) [rad]."""
        return self._backend.forward_kinematics(np.asarray(q, float))

    def inverse(self, tcp_pose, seed, q_rest=None, margin: float = 0.1) -> np.ndarray | None:
        """Arm joints [rad] reaching `tcp_pose` (7,) from `seed` (7,), or None when out of reach or
        within `margin` [rad] of a joint limit."""
        from sim.exceptions import SimError
        from sim.ik import solve_ik

        try:
            return solve_ik(
                self.forward,
                np.asarray(tcp_pose, float),
                np.asarray(seed, float),
                self.lower + margin,
                self.upper - margin,
                q_rest=None if q_rest is None else np.asarray(q_rest, float),
            )
        except SimError:
            return None

    def close(self) -> None:
        self._backend.close()
