"""Scripted place-on-fixture: lift, turn the peg upright (tip down) over the pocket, lower it in,
let go, back away.

Of the four yaws the square pocket allows, the one nearest the current hand orientation is used.
Noise: jitter of up to 2 mm and 1 deg per step at noise=1 while moving (none within 2 cm of the
pre-place pose), and a random lift height (28-32 cm).
"""

from __future__ import annotations

import numpy as np

from sim.experts.base import Expert, register_expert
from sim.spatial import compose, inverse, pose, quat_from_euler, rotation_error, z_axis


@register_expert
class PlaceExpert(Expert):
    task = "place_on_fixture"

    def reset(self, env) -> None:
        self.phase = "lift"
        self.safe = 0.30 + 0.02 * min(self.noise, 1.0) * self.rng.uniform(-1, 1)
        self.yaw = None
        self.count = 0
        self.retreat_from = None

    def _peg_target(self, env, clearance: float) -> np.ndarray:
        info = env.episode.info
        pocket = np.asarray(info["targets"]["pocket"])
        base = pose([0.0, 0.0, info["length_m"] + clearance], quat_from_euler(np.pi, 0.0, 0.0))
        return compose(compose(pocket, pose([0, 0, 0], quat_from_euler(0.0, 0.0, self.yaw))), base)

    def act(self, env) -> np.ndarray:
        info = env.episode.info
        tcp = env.tcp_pose()
        peg = env.object_pose("peg")
        peg_in_tcp = compose(inverse(tcp), peg)
        pocket_z = float(np.asarray(info["targets"]["pocket"])[2])
        above = info["targets"]["fixture_top"] - pocket_z + 0.03
        if self.yaw is None:
            # The square pocket takes the peg at four yaws: use the reachable one (away from the
            # joint limits, low enough to lower the peg in) needing the least joint motion.
            q_now = env.joint_positions()
            best = None
            for yaw in np.radians([0.0, 90.0, 180.0, 270.0]):
                self.yaw = yaw
                goals = [compose(self._peg_target(env, c), inverse(peg_in_tcp)) for c in (above, 0.004)]
                qs = [env.inverse_kinematics(g, margin=0.15) for g in goals]
                if any(q is None for q in qs):
                    continue
                cost = float(np.abs(qs[0] - q_now).sum())
                if best is None or cost < best[0]:
                    best = (cost, yaw)
            self.yaw = best[1] if best else 0.0
        close = True
        limit, turn_limit = 0.03, 0.2
        if self.phase == "lift":
            target = tcp.copy()
            target[2] = self.safe
            if tcp[2] >= self.safe - 0.01:
                self.phase = "move"
        if self.phase == "move":
            target = compose(self._peg_target(env, above), inverse(peg_in_tcp))
            self.count += 1
            if _near(tcp, target, 0.004, np.radians(3.0)) or self.count > 30:
                self.phase, self.count = "lower", 0
        if self.phase == "lower":
            target = compose(self._peg_target(env, 0.004), inverse(peg_in_tcp))
            limit = 0.01
            self.count += 1
            tip_z = peg[2] + info["length_m"] * z_axis(peg[3:])[2]
            if tip_z - pocket_z < 0.006 or self.count > 15:
                self.phase, self.count = "release", 0
        if self.phase == "release":
            target, close = tcp, False
            self.count += 1
            if self.count >= 3:
                self.phase = "retreat"
                self.retreat_from = tcp.copy()
        if self.phase == "retreat":
            target = self.retreat_from.copy()
            target[:3] += -0.08 * z_axis(self.retreat_from[3:]) + [0.0, 0.0, 0.02]
            close = False
        delta = np.zeros(7)
        delta[:3] = target[:3] - tcp[:3]
        delta[3:6] = rotation_error(tcp[3:], target[3:])
        norm = np.linalg.norm(delta[:3])
        if norm > limit:
            delta[:3] *= limit / norm
        size = np.linalg.norm(delta[3:6])
        if size > turn_limit:
            delta[3:6] *= turn_limit / size
        if self.phase in ("lift", "move") and self.noise > 0:
            far = float(np.clip((norm - 0.02) / 0.05, 0.0, 1.0))
            delta[:3] += self.rng.normal(0, 0.002 * self.noise * far, 3)
            delta[3:6] += self.rng.normal(0, np.radians(1.0) * self.noise * far, 3)
        delta[6] = 1.0 if close else 0.0
        return delta


def _near(a: np.ndarray, b: np.ndarray, distance: float, angle: float) -> bool:
    return np.linalg.norm(a[:3] - b[:3]) < distance and np.linalg.norm(rotation_error(a[3:], b[3:])) < angle
