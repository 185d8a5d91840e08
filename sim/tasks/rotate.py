"""Rotate: turn a held peg about its axis until its section lines up with its hole (FMB primitive
"rotate", between grasp and insert for a standing peg).

Start: the peg is held tip-down (grasped 20-40 mm below its base, on its axis or off a neck as
`standing_grasp_x` says), its tip 40-80 mm above the board, within +-30 mm of the hole axis,
turned 20-90 deg (either way) away from the hole's yaw.
The board is placed as in `insert`.

Success: the section's yaw matches the hole's within 3 deg, modulo the section's symmetries
(a star matches every 72 deg), the peg axis is within 5 deg of vertical, the peg is still held
by both fingers and its tip is above the board. Progress: 1 - yaw error / 90 deg while held.
Step limit: 70.
"""

from __future__ import annotations

import numpy as np

from sim.objects import board_for, peg_part
from sim.randomization import PLACEMENTS
from sim.scene import SceneObject
from sim.spatial import about, axis_angle_between, compose, flip_z, inverse, pose, quat_from_yaw, z_axis
from sim.tasks.base import EpisodeStart, Evaluation, Task, WorldView, peg_facts, register_task
from sim.tasks.geometry import comfortable_grasp, held_peg_in_tcp, inserted_peg_pose, symmetry_angles, yaw_error
from sim.tasks.grasp import standing_grasp_x
from sim.tasks.insert import place_board
from sim.tasks.skill_goals import held_tcp_goal

SUCCESS_YAW = np.radians(3.0)
SUCCESS_TILT = np.radians(5.0)


def rotate_info(spec, board_name: str, hole_key: str, hole: np.ndarray, grasp_offset: float, clearance: float) -> dict:
    """The rotate task's episode facts and targets for the hole at `hole` (7,) ("symmetries" and
    "centroid" as `sim.tasks.insert.insert_info` records them)."""
    centroid = spec.section().centroid
    return {
        **peg_facts(spec),
        "board": board_name,
        "hole": hole_key,
        "grasp_offset": float(grasp_offset),
        "length_m": spec.length_m,
        "symmetries": list(symmetry_angles(spec, clearance)),
        "centroid": [centroid.x, centroid.y, 0.0],
        "turn_in_place": True,  # its tcp_goal turns the hand where it is (sim.tasks.skill_goals)
        "targets": {"hole": np.asarray(hole).tolist(), "peg_goal": inserted_peg_pose(hole, spec, 0.025).tolist()},
    }


@register_task
class RotateTask(Task):
    """See module docstring."""

    name = "rotate"
    max_steps = 70

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        spec = self.pool.draw(rng)
        peg = peg_part(spec)
        board, hole_key = board_for(spec, self.pool.clearance)
        board_pose, hole = place_board(board, hole_key, rng, placement=PLACEMENTS[self.placement])
        aligned = inserted_peg_pose(hole, spec, depth=-rng.uniform(0.04, 0.08))
        turn = rng.choice([-1.0, 1.0]) * rng.uniform(np.radians(20.0), np.radians(90.0))
        shift = pose([*rng.uniform(-0.03, 0.03, 2), 0.0], quat_from_yaw(turn))
        peg_pose = about(hole[:3], shift, aligned)
        grasp = rng.uniform(0.02, 0.04)
        held = held_peg_in_tcp(grasp)
        held[0] = -standing_grasp_x(spec.section())  # off a neck, where the grasp task holds it
        tcp = comfortable_grasp(peg_pose, held)
        section = spec.section()
        info = rotate_info(spec, board.name, hole_key, hole, grasp, self.pool.clearance)
        # The skill's command in the hand's terms (sim.tasks.skill_goals), and the in-hand pose
        # the start's grasp was commanded with (as the insert task records it).
        info["peg_in_tcp"] = compose(inverse(tcp), peg_pose).tolist()
        info["targets"]["tcp_goal"] = held_tcp_goal(info, spec, hole, tcp, info["peg_in_tcp"]).tolist()
        return EpisodeStart(
            [SceneObject("board", board, fixed=True), SceneObject("peg", peg)],
            {"board": board_pose, "peg": peg_pose},
            tcp,
            float(section.bounds[3] - section.bounds[1]),
            True,
            info,
        )

    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        peg = world.object_pose("peg")
        goal = np.asarray(start.info["targets"]["peg_goal"])
        hole = np.asarray(start.info["targets"]["hole"])
        error = yaw_error(peg[3:], goal[3:], start.info["symmetries"])
        tilt = axis_angle_between(flip_z(peg[3:]), hole[3:])
        held = world.touching("peg", "left_finger") and world.touching("peg", "right_finger")
        tip = peg[:3] + start.info["length_m"] * z_axis(peg[3:])
        above = (tip - hole[:3]) @ z_axis(hole[3:]) > 0.0
        success = error <= SUCCESS_YAW and tilt <= SUCCESS_TILT and held and above
        progress = 1.0 if success else (1 - min(1.0, error / np.radians(90.0))) * (1.0 if held else 0.0)
        return Evaluation(success, progress, not held, {"yaw_error": error, "tilt": tilt, "held": float(held)})
