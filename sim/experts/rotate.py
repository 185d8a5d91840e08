"""Scripted rotate: turn the hand until the held peg's section lines up with the hole, by the
shortest way modulo the section's symmetries, holding position.

Noise: jitter of up to 1 mm and 0.5 deg per step at noise=1, fading within 10 deg of the goal,
and a random turning speed (8-14 deg per step).
"""

from __future__ import annotations

import numpy as np

from sim.experts.base import Expert, register_expert
from sim.spatial import quat_from_euler, quat_multiply, rotation_error


@register_expert
class RotateExpert(Expert):
    task = "rotate"

    def reset(self, env) -> None:
        self.speed = np.radians(8.0 + 6.0 * self.rng.uniform() * min(self.noise, 1.0))
        self.position = env.tcp_pose()[:3].copy()

    def act(self, env) -> np.ndarray:
        goal = np.asarray(env.episode.info["targets"]["peg_goal"])
        peg = env.object_pose("peg")
        tcp = env.tcp_pose()
        # The goal turned by each symmetry of the section is as good: pick the nearest.
        errors = [
            rotation_error(peg[3:], quat_multiply(goal[3:], quat_from_euler(0.0, 0.0, a)))
            for a in env.episode.info["symmetries"]
        ]
        turn = min(errors, key=np.linalg.norm)
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
