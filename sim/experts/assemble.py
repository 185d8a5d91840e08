"""Scripted assembly (every board of `sim.tasks.assembly`): for each part in order, pick it from the
top, carry it over its place at a safe height, lower it in, let go, back off.

The grasp closes across each part's narrow side, 15 mm below its top (less for flat parts, as the
episode's `grasp_below_top` says), turned by 0 or 180 deg about the hand axis, whichever keeps the
hand's x axis forward; the lift waits until the fingers have stopped on the part. The part's
pose in the hand is measured after closing, so a part that shifted in the fingers still lands on
its target. Noise: jitter of up to 2 mm and 1 deg per step at noise=1 on the approach and carry,
fading within 2 cm of the goal. A part that stops more than 2 mm short of its goal (caught on a
socket's rim) is lifted back over the goal and lowered again, up to MAX_RETRIES times.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.experts.base import Expert, near, register_expert, servo
from sim.spatial import compose, inverse, pose
from sim.tasks.geometry import TCP_DOWN

GRASP_BELOW_TOP = {"bridge": 0.008}  # for episodes recorded before `grasp_below_top` was in their info
DEFAULT_BELOW_TOP = 0.015
CARRY_HEIGHT = 0.14  # [m] lowest TCP height for moves
MAX_RETRIES = 2  # times a part stuck on the way in is lifted back over its goal and lowered again
CLEAR_HEIGHT = 0.12  # [m] what carried parts' bottoms clear when the episode does not say (the bridge's)


@register_expert
class AssembleExpert(Expert):
    task = "assemble"

    def reset(self, env) -> None:
        self.index = 0
        self._next_part()

    def _next_part(self) -> None:
        self.phase = "approach"
        self.count = 0
        self.grasp_in_part = None
        self.part_in_tcp = None
        self.retries = 0
        self.width = float("inf")

    def act(self, env) -> np.ndarray:
        info = env.episode.info
        keys = info["order"]
        tcp = env.tcp_pose()
        if self.index >= len(keys):
            return np.zeros(7)
        key = keys[self.index]
        part = env.object_pose(key)
        goal = np.asarray(info["targets"][key])
        if self.grasp_in_part is None:
            below = info.get("grasp_below_top", GRASP_BELOW_TOP).get(key, DEFAULT_BELOW_TOP)
            plain = pose([0.0, 0.0, info["heights"][key] - below], TCP_DOWN)
            turned = compose(plain, pose([0, 0, 0], [0.0, 0.0, 1.0, 0.0]))
            self.grasp_in_part = max(
                (plain, turned), key=lambda g: Rotation.from_quat(compose(part, g)[3:]).apply([1, 0, 0])[0]
            )
        close, limit = True, 0.05
        grasp = compose(part, self.grasp_in_part)
        clear = float(info.get("clear_height", CLEAR_HEIGHT))
        retreat = max(CARRY_HEIGHT, clear + 0.02)  # open fingers clear the tallest placed part
        if self.phase == "approach":
            target, close = grasp.copy(), False
            target[2] += 0.08
            if near(tcp, target, 0.008, np.radians(4.0)):
                self.phase = "descend"
        if self.phase == "descend":
            target, close, limit = grasp, False, 0.03
            if near(tcp, grasp, 0.003, np.radians(2.0)):
                self.phase = "close"
        if self.phase == "close":
            target = grasp
            self.count += 1
            width, self.width = self.width, env.gripper_width()
            # Lift once the fingers have stopped on the part (a thin part takes longer to reach
            # than the three periods that used to be waited: it slipped away below the fingers).
            if self.count >= 3 and (abs(width - self.width) < 0.0005 or self.count >= 10):
                self.phase, self.count = "lift", 0
                self.part_in_tcp = compose(inverse(tcp), part)
                self.hang = float(tcp[2] - part[2])  # TCP height above the part's bottom
        if self.phase in ("lift", "carry", "place"):
            if env.gripper_width() < 0.002:  # closed on nothing: the grasp missed, start again
                self._next_part()
                return np.array([0.0, 0.0, 0.02, 0.0, 0.0, 0.0, 0.0])
            self.part_in_tcp = compose(inverse(tcp), part)  # follow any slip in the fingers
            above = goal.copy()
            above[2] += 0.05
            over = compose(above, inverse(self.part_in_tcp))
            # High enough that the part's bottom clears everything already placed (the bridge's
            # pillar tops, 95 mm above the board's base) with a margin.
            carry = max(CARRY_HEIGHT, over[2], clear + self.hang)
        if self.phase == "lift":
            target = tcp.copy()
            target[2] = carry
            if tcp[2] >= carry - 0.01:
                self.phase = "carry"
        if self.phase == "carry":
            target = over.copy()
            target[2] = carry if np.linalg.norm(tcp[:2] - over[:2]) > 0.01 else over[2]
            if near(tcp, over, 0.003, np.radians(2.0)):
                self.phase = "place"
            elif np.linalg.norm(tcp[:2] - over[:2]) < 0.03:
                limit = 0.01  # slow down over the goal so the alignment settles
        if self.phase == "place":
            target = compose(goal, inverse(self.part_in_tcp))
            target[2] += 0.001
            limit = 0.015
            self.count += 1
            if part[2] - goal[2] < 0.002 or self.count > 20:
                self.phase, self.count = "release", 0
                if part[2] - goal[2] >= 0.002 and self.retries < MAX_RETRIES:  # stuck on the way in
                    self.phase, self.retries = "carry", self.retries + 1  # back up over the goal, again
        if self.phase == "release":
            target, close = tcp, False
            self.count += 1
            if self.count >= 3:
                self.phase, self.count = "retreat", 0
        if self.phase == "retreat":
            target, close = tcp.copy(), False
            target[2] = retreat
            if tcp[2] >= retreat - 0.02:
                self.index += 1
                self._next_part()
        norm = float(np.linalg.norm(target[:3] - tcp[:3]))
        delta = servo(tcp, target, close, limit)
        if self.phase in ("approach", "carry"):
            self.jitter(delta, float(np.clip((norm - 0.02) / 0.05, 0.0, 1.0)))
        return delta


@register_expert
class AssembleTowerExpert(AssembleExpert):
    task = "assemble_tower"


@register_expert
class AssembleCombExpert(AssembleExpert):
    task = "assemble_comb"


@register_expert
class AssembleProceduralExpert(AssembleExpert):
    task = "assemble_procedural"
