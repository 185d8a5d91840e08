"""Scripted insertion: align the held peg's tip over the hole, then push it straight down.

Uses the peg's measured pose (so a peg that slipped in the fingers is still aligned) and the
task's target (the inserted peg pose). Phases: hover 10 mm above the top face until the tip is
within 1 mm and 1.5 deg of the hole axis, then descend at <= 8 mm per step to the goal depth.
A turn about the vertical of more than 60 deg that would take the wrist to a joint limit goes the
long way round (`YawTurn`; only a chain hands over a peg that far off its hole's yaw).
Noise: Gaussian jitter on the approach (up to 1.5 mm, 0.6 deg per step at noise=1, fading to none
within 3 mm of alignment) and a random approach speed; none during the final descent.
Modes: "nearest" aims at the fitting turn nearest the held peg (`nearest_fitting_goal`, every
step); "all" draws one of the section's fitting turns per episode (a star's five, a rectangle's
two; a round peg, which fits at every turn, keeps the nearest) and turns the peg to it: multimodal
demonstrations. `episode_report()` says which turn the episode aimed at.
"""

from __future__ import annotations

import numpy as np

from cad.fmb_reference import LENGTHS
from sim.experts.base import Expert, YawTurn, register_expert
from sim.limits import DEFAULT_ACTION_LIMITS
from sim.spatial import compose, inverse, rotation_error, z_axis
from sim.tasks.geometry import nearest_fitting_goal, nearest_fitting_turn, turned_goal

HOVER = 0.01
ALIGN_LATERAL = 0.0005  # [m] start the descent within this of the hole axis ...
ALIGN_ANGLE = np.radians(0.5)  # [rad] ... and this of the hole's orientation
ABORT_LATERAL = 0.002  # [m] go back up when the tip drifts this far before entering
"""Height of the peg tip above the board's top face while aligning [m]."""


@register_expert
class InsertExpert(Expert):
    task = "insert"
    MODES = ("nearest", "all")

    def reset(self, env) -> None:
        self.speed = 0.015 + 0.01 * self.rng.uniform() * min(self.noise, 1.0)  # [m/step] approach
        self.descending = False
        self.stalled = 0
        self.last_depth = None
        self.yaw_turn = None
        info = env.episode.info
        symmetries = info.get("symmetries", [0.0])
        self.turn = None  # [rad] the fitting turn drawn for this episode; None: the nearest, every step
        if self.modes == "all" and len(symmetries) < 360:
            self.turn = float(self.rng.choice(symmetries))
        goal, hole = np.asarray(info["targets"]["peg_goal"]), np.asarray(info["targets"]["hole"])
        self.start_turn = self.turn
        if self.turn is None:
            self.start_turn = nearest_fitting_turn(info, goal, hole, env.object_pose("peg"))

    def _goal(self, info: dict, hole: np.ndarray, goal: np.ndarray, peg: np.ndarray) -> np.ndarray:
        if self.turn is None:
            return nearest_fitting_goal(info, goal, hole, peg)
        return turned_goal(info, goal, hole, self.turn)

    def episode_report(self) -> dict:
        """The modes, and the fitting turn [deg] about the hole's axis from the task's peg goal that
        the episode aimed at (at its start: "nearest" follows the peg)."""
        return {"expert_modes": self.modes, "expert_turn_deg": round(float(np.degrees(self.start_turn)), 1)}

    def act(self, env) -> np.ndarray:
        targets = env.episode.info["targets"]
        hole = np.asarray(targets["hole"])
        peg = env.object_pose("peg")
        goal = self._goal(env.episode.info, hole, np.asarray(targets["peg_goal"]), peg)
        tcp = env.tcp_pose()
        peg_in_tcp = compose(inverse(tcp), peg)
        length = LENGTHS[env.episode.info["length"]]
        goal_tip = goal[:3] + length * _z(goal)
        goal_depth = (hole[:3] - goal_tip) @ _z(hole)
        above = goal.copy()
        above[:3] = goal[:3] + _z(hole) * (goal_depth + HOVER)
        # Aligned when the peg's pose matches the hover pose except along the hole axis.
        offset = peg[:3] - above[:3]
        lateral = offset - (offset @ _z(hole)) * _z(hole)
        angle = np.linalg.norm(rotation_error(peg[3:], goal[3:]))
        tip = peg[:3] + length * _z(peg)
        depth = (hole[:3] - tip) @ _z(hole)  # tip below the top face [m]
        aligned = np.linalg.norm(lateral) < ALIGN_LATERAL and angle < ALIGN_ANGLE
        if not self.descending and aligned:
            self.descending = True
        elif self.descending:
            # Give up the descent when off the axis before entering, or stuck (jammed).
            moving = self.last_depth is None or depth > self.last_depth + 0.0005
            self.stalled = 0 if moving else self.stalled + 1
            off_axis = depth < 0.001 and np.linalg.norm(lateral) > ABORT_LATERAL
            if off_axis or self.stalled >= 4:
                self.descending, self.stalled = False, 0
        self.last_depth = depth
        target_peg = goal if self.descending else above
        target_tcp = compose(target_peg, inverse(peg_in_tcp))
        delta = np.zeros(7)
        delta[:3] = target_tcp[:3] - tcp[:3]
        delta[3:6] = rotation_error(tcp[3:], target_tcp[3:])
        if self.yaw_turn is None:  # in a chain the peg may arrive up to half a turn off its hole
            self.yaw_turn = YawTurn()
            self.yaw_turn.plan(env, float(rotation_error(peg[3:], goal[3:])[2]))
        remaining = self.yaw_turn.step(env)
        if remaining is not None:
            turn = DEFAULT_ACTION_LIMITS.max_step_rotation  # as fast as an action turns
            delta[5] = float(np.clip(remaining, -turn, turn))  # the long way round (see YawTurn)
        if self.descending:
            # Along the hole axis at most 8 mm per step (3 mm around the entry); across it, the
            # full correction, so that the descent never squeezes out the alignment.
            axis = _z(hole)
            along = (delta[:3] @ axis) * axis
            across = delta[:3] - along
            limit = 0.003 if -0.005 < depth < 0.005 else 0.008
            along *= min(1.0, limit / max(np.linalg.norm(along), 1e-12))
            across *= min(1.0, 0.005 / max(np.linalg.norm(across), 1e-12))
            delta[:3] = along + across
        else:
            norm = np.linalg.norm(delta[:3])
            if norm > self.speed:
                delta[:3] *= self.speed / norm
        if not self.descending and self.noise > 0:
            # Jitter that fades as the peg converges, so demonstrations differ but still align.
            far = float(np.clip((np.linalg.norm(lateral) + 0.02 * angle - 0.003) / 0.01, 0.0, 1.0))
            delta[:3] += self.rng.normal(0.0, 0.0015 * self.noise * far, 3)
            delta[3:6] += self.rng.normal(0.0, np.radians(0.6) * self.noise * far, 3)
        delta[6] = 1.0  # keep holding
        return delta


def _z(p: np.ndarray) -> np.ndarray:
    return z_axis(p[3:])
