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
from scipy.spatial.transform import Rotation

from sim.experts.base import Expert, register_expert
from sim.spatial import quat_from_euler, quat_multiply, rotation_error

ROOM = 0.1  # [rad] joint-limit room the short way round must keep along the turn


def _heading(quat: np.ndarray) -> float:
    """Angle [rad] of the hand's x axis about the vertical."""
    x = Rotation.from_quat(quat).apply([1.0, 0.0, 0.0])
    return float(np.arctan2(x[1], x[0]))


@register_expert
class RotateExpert(Expert):
    task = "rotate"

    def reset(self, env) -> None:
        self.speed = np.radians(8.0 + 6.0 * self.rng.uniform() * min(self.noise, 1.0))
        self.position = env.tcp_pose()[:3].copy()
        self.remaining = None  # [rad] left of a long-way turn about the vertical (None: shortest way)
        self.planned = False

    def _turn(self, env) -> np.ndarray:
        """Rotation vector [rad] from the peg to the nearest goal (modulo the symmetries)."""
        goal = np.asarray(env.episode.info["targets"]["peg_goal"])
        peg = env.object_pose("peg")
        errors = [
            rotation_error(peg[3:], quat_multiply(goal[3:], quat_from_euler(0.0, 0.0, a)))
            for a in env.episode.info["symmetries"]
        ]
        return min(errors, key=np.linalg.norm)

    def _plan(self, env, turn: np.ndarray) -> None:
        """Take the long way round when IK along the short way comes within ROOM of a joint limit."""
        angle = float(turn[2])
        if abs(angle) < np.radians(60.0):
            return
        lower, upper = env.joint_limits()
        tcp = env.tcp_pose()

        def room(total: float) -> float:
            q, least = env.joint_positions(), np.inf
            for t in np.linspace(0.0, 1.0, int(np.ceil(abs(total) / 0.4)) + 1)[1:]:
                quat = (Rotation.from_rotvec([0.0, 0.0, t * total]) * Rotation.from_quat(tcp[3:])).as_quat()
                q = env.inverse_kinematics(np.concatenate([tcp[:3], quat]), margin=0.0, seed=q)
                if q is None:
                    return -np.inf
                least = min(least, float(np.min(np.minimum(q - lower, upper - q))))
            return least

        if room(angle) >= ROOM:
            return
        long_way = angle - np.sign(angle) * 2.0 * np.pi
        if room(long_way) > room(angle):
            self.remaining = long_way
            self.last_heading = _heading(tcp[3:])

    def act(self, env) -> np.ndarray:
        tcp = env.tcp_pose()
        turn = self._turn(env)
        if not self.planned:
            self.planned = True
            self._plan(env, turn)
        if self.remaining is not None:
            heading = _heading(tcp[3:])
            self.remaining -= float(np.angle(np.exp(1j * (heading - self.last_heading))))
            self.last_heading = heading
            if abs(self.remaining) < np.radians(60.0):
                self.remaining = None  # near enough: the shortest way is now this way
            else:
                turn = np.array([turn[0], turn[1], self.remaining])  # keep levelling; turn the long way
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
