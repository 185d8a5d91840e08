"""Scripted rotate: turn the hand until the held peg's section lines up with the hole, by the
shortest way modulo the section's symmetries, holding position.

The turn is about the vertical, which joint 7 makes; when the shortest way would take joint 7
past its limit (a peg with few symmetries may need up to half a turn), inverse kinematics along
the turn says so and the hand goes the long way round instead, counting the angle it has turned.

Noise: jitter of up to 1 mm and 0.5 deg per step at noise=1, fading within 10 deg of the goal,
and a random turning speed (8-14 deg per step).
"""

from __future__ import annotations

import numpy as np

from sim.experts.base import Expert, YawTurn, register_expert
from sim.spatial import quat_from_euler, quat_multiply, rotation_error


@register_expert
class RotateExpert(Expert):
    task = "rotate"

    def reset(self, env) -> None:
        self.speed = np.radians(8.0 + 6.0 * self.rng.uniform() * min(self.noise, 1.0))
        self.position = env.tcp_pose()[:3].copy()
        self.yaw_turn = None

    def _turn(self, env) -> np.ndarray:
        """Rotation vector [rad] from the peg to the nearest goal (modulo the symmetries)."""
        goal = np.asarray(env.episode.info["targets"]["peg_goal"])
        peg = env.object_pose("peg")
        errors = [
            rotation_error(peg[3:], quat_multiply(goal[3:], quat_from_euler(0.0, 0.0, a)))
            for a in env.episode.info["symmetries"]
        ]
        return min(errors, key=np.linalg.norm)

    def act(self, env) -> np.ndarray:
        tcp = env.tcp_pose()
        turn = self._turn(env)
        if self.yaw_turn is None:
            self.yaw_turn = YawTurn()
            self.yaw_turn.plan(env, float(turn[2]))
        remaining = self.yaw_turn.step(env)
        if remaining is not None:
            turn = np.array([turn[0], turn[1], remaining])  # keep levelling; turn the long way
        size = np.linalg.norm(turn)
        delta = np.zeros(7)
        delta[3:6] = turn * min(1.0, self.speed / max(size, 1e-12))
        delta[:3] = self.position - tcp[:3]
        if self.noise > 0:
            far = float(np.clip((size - np.radians(10.0)) / np.radians(20.0), 0.0, 1.0))
            delta[:3] += self.rng.normal(0, 0.001 * self.noise * far, 3)
            delta[3:6] += self.rng.normal(0, np.radians(0.5) * self.noise * far, 3)
        delta[6] = 1.0
        return delta
