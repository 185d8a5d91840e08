"""Scripted grasp: open, go above the grasp pose, descend, close, lift.

The grasp pose comes from the task (on the peg's narrow side, 25 mm below the top of a standing
peg and on its axis unless that is a neck, see `standing_grasp_x`, or across a lying one 30 % of
its length from the base) and follows the peg if it is pushed before the fingers
close. Noise: jitter on the approach (up to 2 mm, 1 deg per step at noise=1, none within 5 mm of
the pre-grasp pose), a random pre-grasp height (6-10 cm) and lift height (8-12 cm).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.experts.base import Expert, near, register_expert, servo
from sim.spatial import compose, pose


@register_expert
class GraspExpert(Expert):
    task = "grasp"

    def reset(self, env) -> None:
        k = min(self.noise, 1.0)
        self.above = 0.08 + 0.02 * k * self.rng.uniform(-1, 1)
        self.lift = 0.10 + 0.02 * k * self.rng.uniform(-1, 1)
        self.phase = "approach"
        self.closing = 0
        self.grasp = None
        # A parallel gripper grasps the same way turned by 180 deg about its axis: keep the turn
        # whose hand x axis points forward (away from the wrist's joint limit) for where the peg is.
        grasp_in_peg = np.asarray(env.episode.info["targets"]["grasp_in_peg"])
        turned = compose(grasp_in_peg, pose([0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]))
        peg = env.object_pose("peg")
        self.grasp_in_peg = max(
            (grasp_in_peg, turned), key=lambda g: Rotation.from_quat(compose(peg, g)[3:]).apply([1.0, 0.0, 0.0])[0]
        )

    def act(self, env) -> np.ndarray:
        tcp = env.tcp_pose()
        if self.phase in ("approach", "descend"):
            self.grasp = compose(env.object_pose("peg"), self.grasp_in_peg)
        grasp = self.grasp
        pre = grasp.copy()
        pre[2] += self.above
        close = False
        if self.phase == "approach":
            target = pre
            if near(tcp, pre, 0.004, np.radians(2.0)):
                self.phase = "descend"
        if self.phase == "descend":
            target = grasp
            if near(tcp, grasp, 0.003, np.radians(2.0)):
                self.phase = "close"
        if self.phase == "close":
            target, close = grasp, True
            self.closing += 1
            if self.closing >= 3:
                self.phase = "lift"
        if self.phase == "lift":
            target, close = grasp.copy(), True
            target[2] += self.lift
        delta = servo(tcp, target, close, 0.04 if self.phase == "approach" else 0.02)
        if self.phase == "approach":
            self.jitter(delta, float(np.clip((np.linalg.norm(pre[:3] - tcp[:3]) - 0.005) / 0.02, 0, 1)))
        return delta
