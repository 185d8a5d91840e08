"""Scripted place-on-fixture: lift while turning the lying peg about the vertical, pitch it upright
(tip down) over the pocket, lower it in, let go, back away.

The motion is split so that the arm never needs an awkward wrist: first, with the hand still
pointing down, the peg is turned about the vertical (joint 7 does that) to the heading from which
a pure pitch about the hand's finger axis stands it upright in one of the four yaws the square
pocket allows; then the hand pitches (joints 2, 4, 6, in the arm's vertical plane) while moving
over the pocket. Of the four yaws, the one whose path inverse kinematics finds within the joint
limits and that leaves the hand pointing most nearly away from the robot's base is used (a hand
pointing back at the base drives joint 6 into its limit; a straight turn from the grasp pose to
the upright one drives joint 7 into its limit).

The peg is let go only once its tip is on the pocket floor and it stands upright (otherwise the
expert lifts it over the pocket and tries again). Noise: jitter of up to 2 mm and 1 deg per step
at noise=1 while moving (none within 2 cm of the pre-place pose), and a random lift height
(26-30 cm).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.experts.base import Expert, near, register_expert, servo
from sim.spatial import compose, inverse, pose, quat_from_euler, z_axis

UP = np.array([0.0, 0.0, 1.0])


@register_expert
class PlaceExpert(Expert):
    task = "place_on_fixture"

    def reset(self, env) -> None:
        self.phase = "turn"
        self.safe = 0.28 + 0.02 * min(self.noise, 1.0) * self.rng.uniform(-1, 1)
        self.yaw = None
        self.turn = []
        self.count = 0
        self.retreat_from = None

    def _peg_target(self, env, clearance: float) -> np.ndarray:
        info = env.episode.info
        pocket = np.asarray(info["targets"]["pocket"])
        base = pose([0.0, 0.0, info["length_m"] + clearance], quat_from_euler(np.pi, 0.0, 0.0))
        return compose(compose(pocket, pose([0, 0, 0], quat_from_euler(0.0, 0.0, self.yaw))), base)

    def _heading_pose(self, tcp: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """TCP pose (7,) pointing down at the lift height over `tcp`'s position, from which a
        pure pitch about the hand's y axis (the fingers' closing axis) reaches `goal`'s
        orientation (hand z horizontal, hand x vertical: the peg upright)."""
        rot = Rotation.from_quat(goal[3:])
        x_up = rot.apply([1.0, 0.0, 0.0])[2] > 0
        # R_H = R_G R_y(a) with R_H e_z = sin(a) x_G + cos(a) z_G = -up.
        heading = rot * Rotation.from_euler("y", -np.pi / 2 if x_up else np.pi / 2)
        out = np.concatenate([tcp[:3], heading.as_quat()])
        out[2] = self.safe
        return out

    def _plan(self, env, tcp: np.ndarray, peg_in_tcp: np.ndarray, above: float) -> None:
        """Choose the pocket yaw, the way to turn to its heading, and the waypoints of that turn.

        For each yaw, the heading is reached by turning about the vertical the short way or the
        long way round (joint 7 may only have room for one of them), in steps of at most 0.6 rad;
        then the pitch to the pose over the pocket (five poses along it) and the pose in the
        pocket follow. Each path is checked by inverse kinematics, each solution seeding the next
        as the controller carries the arm; the one keeping the most room to the joint limits wins.
        """
        lower, upper = env.joint_limits()
        start = tcp.copy()
        start[2] = self.safe
        best = (-np.inf, 0.0, [])
        for yaw in np.radians([0.0, 90.0, 180.0, 270.0]):
            self.yaw = yaw
            goal = compose(self._peg_target(env, above), inverse(peg_in_tcp))
            heading = self._heading_pose(tcp, goal)
            r_start, r_heading = Rotation.from_quat(start[3:]), Rotation.from_quat(heading[3:])
            short = (r_heading * r_start.inv()).as_rotvec()
            angle = float(np.linalg.norm(short))
            ways = [short]
            if angle > 1e-6:
                ways.append(short * (1.0 - 2.0 * np.pi / angle))
            for way in ways:
                n = max(1, int(np.ceil(np.linalg.norm(way) / 0.6)))
                turn = [
                    np.concatenate(
                        [(1 - t) * start[:3] + t * heading[:3], (Rotation.from_rotvec(t * way) * r_start).as_quat()]
                    )
                    for t in np.linspace(1.0 / n, 1.0, n)
                ]
                r_goal = Rotation.from_quat(goal[3:])
                pitch = (r_goal * r_heading.inv()).as_rotvec()
                waypoints = turn + [
                    np.concatenate(
                        [(1 - t) * heading[:3] + t * goal[:3], (Rotation.from_rotvec(t * pitch) * r_heading).as_quat()]
                    )
                    for t in np.linspace(0.2, 1.0, 5)
                ]
                waypoints.append(compose(self._peg_target(env, 0.004), inverse(peg_in_tcp)))
                q, room = env.joint_positions(), np.inf
                for w in waypoints:
                    q = env.inverse_kinematics(w, margin=0.0, seed=q)
                    if q is None:
                        room = -np.inf
                        break
                    room = min(room, float(np.min(np.minimum(q - lower, upper - q))))
                if not best[2] or room > best[0]:
                    best = (room, yaw, turn)
        self.yaw = float(best[1])
        self.turn = best[2]

    def act(self, env) -> np.ndarray:
        info = env.episode.info
        tcp = env.tcp_pose()
        peg = env.object_pose("peg")
        peg_in_tcp = compose(inverse(tcp), peg)
        pocket_z = float(np.asarray(info["targets"]["pocket"])[2])
        above = info["targets"]["fixture_top"] - pocket_z + 0.03
        if self.yaw is None:
            self._plan(env, tcp, peg_in_tcp, above)
        close = True
        limit, turn_limit = 0.03, 0.2
        if self.phase == "turn":
            target = self.turn[0]
            limit, turn_limit = 0.05, 0.25
            self.count += 1
            if len(self.turn) > 1 and near(tcp, target, 0.05, 0.3):
                self.turn.pop(0)
                target = self.turn[0]
            elif near(tcp, target, 0.02, np.radians(8.0)) or self.count > 20:
                self.phase, self.count = "move", 0
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
        if self.phase in ("turn", "move"):
            self.jitter(delta, float(np.clip((norm - 0.02) / 0.05, 0.0, 1.0)))
        return delta
