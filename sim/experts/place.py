"""Scripted place-on-fixture: lift, turn the peg upright (tip down) over the pocket, lower it in,
let go, back away.

Of the four yaws the square pocket allows, the one whose path keeps the arm farthest from its
joint limits is used; the peg is let go only once its tip is on the pocket floor and it stands
upright (otherwise the expert lifts it over the pocket and tries again).
Noise: jitter of up to 2 mm and 1 deg per step at noise=1 while moving (none within 2 cm of the
pre-place pose), and a random lift height (28-32 cm).
"""

from __future__ import annotations

import numpy as np

from sim.experts.base import Expert, near, register_expert, servo
from sim.spatial import compose, inverse, pose, quat_from_euler, z_axis


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

    def _choose_yaw(self, env, tcp: np.ndarray, peg_in_tcp: np.ndarray, above: float) -> float:
        """Of the four yaws the square pocket allows, the one whose straight Cartesian path (what
        the impedance controller follows) keeps the arm farthest from its joint limits.

        The path is checked by inverse kinematics at eight poses along it, each solution seeding
        the next, as the controller's null-space posture would carry the arm.
        """
        from scipy.spatial.transform import Rotation, Slerp

        lower, upper = env.joint_limits()
        best = (-np.inf, 0.0)
        for yaw in np.radians([0.0, 90.0, 180.0, 270.0]):
            self.yaw = yaw
            goal = compose(self._peg_target(env, above), inverse(peg_in_tcp))
            lifted = tcp.copy()
            lifted[2] = self.safe
            slerp = Slerp([0.0, 1.0], Rotation.from_quat([lifted[3:], goal[3:]]))
            q, margin = env.joint_positions(), np.inf
            for t in np.linspace(0.0, 1.0, 8):
                waypoint = np.concatenate([(1 - t) * lifted[:3] + t * goal[:3], slerp([t]).as_quat()[0]])
                q = env.inverse_kinematics(waypoint, margin=0.0, seed=q)
                if q is None:
                    margin = -np.inf
                    break
                margin = min(margin, float(np.min(np.minimum(q - lower, upper - q))))
            low = compose(self._peg_target(env, 0.004), inverse(peg_in_tcp))
            if margin > -np.inf and env.inverse_kinematics(low, margin=0.05, seed=q) is None:
                margin = -np.inf
            if margin > best[0]:
                best = (margin, yaw)
        return float(best[1])

    def act(self, env) -> np.ndarray:
        info = env.episode.info
        tcp = env.tcp_pose()
        peg = env.object_pose("peg")
        peg_in_tcp = compose(inverse(tcp), peg)
        pocket_z = float(np.asarray(info["targets"]["pocket"])[2])
        above = info["targets"]["fixture_top"] - pocket_z + 0.03
        if self.yaw is None:
            self.yaw = self._choose_yaw(env, tcp, peg_in_tcp, above)
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
            if near(tcp, target, 0.004, np.radians(3.0)) or self.count > 30:
                self.phase, self.count = "lower", 0
        if self.phase == "lower":
            target = compose(self._peg_target(env, 0.004), inverse(peg_in_tcp))
            limit = 0.01
            self.count += 1
            tip = peg[:3] + info["length_m"] * z_axis(peg[3:])
            local = compose(inverse(np.asarray(info["targets"]["pocket"])), pose(tip))[:3]
            inside = max(abs(local[0]), abs(local[1])) < info["targets"]["pocket_half"] - 0.002
            upright = np.degrees(np.arccos(np.clip(-z_axis(peg[3:])[2], -1.0, 1.0))) < 5.0
            down = tip[2] - pocket_z < 0.006 or (self.count > 15 and tip[2] - pocket_z < 0.02)
            if inside and upright and down:
                self.phase, self.count = "release", 0
            elif self.count > 25:  # not going in: lift back over the pocket and try again
                self.phase, self.count = "move", 0
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
        norm = float(np.linalg.norm(target[:3] - tcp[:3]))
        delta = servo(tcp, target, close, limit, turn_limit)
        if self.phase in ("lift", "move"):
            self.jitter(delta, float(np.clip((norm - 0.02) / 0.05, 0.0, 1.0)))
        return delta
