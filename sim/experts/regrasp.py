"""Scripted regrasp: the grasp expert's open / approach / descend / close / lift, applied to a peg
standing in the fixture (the lift clears the fixture's walls).

In a chain the regrasp starts where place_on_fixture let go: the hand points sideways with its
fingers still around the peg. The expert then first backs the hand out along its axis (8 cm,
rising 2 cm), then pitches it back to pointing down while rising to 28 cm (the reverse of the
place expert's pitch, so the wrist retraces a path it has been on), and of the two grasps a
parallel gripper allows (turned by 180 deg about its axis) keeps the grasp expert's unless inverse
kinematics finds it near a joint limit from there. Heading straight for the grasp from
the sideways hand drives joint 6 into its limit.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.experts.base import near, register_expert, servo
from sim.experts.grasp import GraspExpert
from sim.spatial import compose, pose, z_axis

LEVEL_HEIGHT = 0.28  # [m] TCP height at which the hand, pointing down again, starts the approach
SIDEWAYS = np.radians(30.0)  # a hand tilted more than this from pointing down unwinds first
ROOM = 0.2  # [rad] joint-limit room that keeps the grasp expert's choice of turn


@register_expert
class RegraspExpert(GraspExpert):
    task = "regrasp"

    def reset(self, env) -> None:
        super().reset(env)
        self.lift = 0.12 + 0.02 * min(self.noise, 1.0) * self.rng.uniform(-1, 1)
        tcp = env.tcp_pose()
        tilt = float(np.arccos(np.clip(-z_axis(tcp[3:])[2], -1.0, 1.0)))
        self.unwind = None
        if tilt > SIDEWAYS:
            self.phase = "back"
            self.unwind = tcp.copy()
            self.unwind[:3] += -0.08 * z_axis(tcp[3:]) + [0.0, 0.0, 0.02]
            self.count = 0

    def _level_pose(self, tcp: np.ndarray) -> np.ndarray:
        """`tcp` (7,) pitched to point straight down by the smallest turn, at LEVEL_HEIGHT."""
        z = z_axis(tcp[3:])
        down = np.array([0.0, 0.0, -1.0])
        axis = np.cross(z, down)
        angle = float(np.arctan2(np.linalg.norm(axis), z @ down))
        turn = Rotation.from_rotvec(axis / max(np.linalg.norm(axis), 1e-9) * angle)
        out = np.concatenate([tcp[:3], (turn * Rotation.from_quat(tcp[3:])).as_quat()])
        out[2] = LEVEL_HEIGHT
        return out

    def _pick_turn(self, env) -> None:
        """Keep the grasp expert's choice (hand x axis forward, which also suits the insertion
        that follows in a chain) when inverse kinematics reaches its pre-grasp pose from here
        with ROOM to every joint limit; otherwise take the turn with the most room."""
        lower, upper = env.joint_limits()
        peg = env.object_pose("peg")
        turned = compose(self.grasp_in_peg, pose([0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]))
        best = (-np.inf, self.grasp_in_peg)
        for g in (self.grasp_in_peg, turned):
            pre = compose(peg, g)
            pre[2] += self.above
            q = env.inverse_kinematics(pre, margin=0.0)
            room = -np.inf if q is None else float(np.min(np.minimum(q - lower, upper - q)))
            if room >= ROOM:
                best = (room, g)
                break
            if room > best[0]:
                best = (room, g)
        self.grasp_in_peg = best[1]

    def act(self, env) -> np.ndarray:
        if self.phase in ("back", "level"):
            tcp = env.tcp_pose()
            self.count += 1
            if self.phase == "back":
                target = self.unwind
                if near(tcp, target, 0.01, np.radians(5.0)) or self.count > 8:
                    self.phase, self.count = "level", 0
                    self.unwind = self._level_pose(tcp)
            if self.phase == "level":
                target = self.unwind
                if near(tcp, target, 0.01, np.radians(5.0)) or self.count > 20:
                    self._pick_turn(env)
                    self.phase = "approach"
            if self.phase in ("back", "level"):
                return servo(tcp, target, False, 0.04, 0.25)
        return super().act(env)
