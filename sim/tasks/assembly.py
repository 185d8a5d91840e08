"""Assemble: build the bridge assembly (FMB's multi-object task): four parts from a staging area
into their places, in the fixed order base -> square pillar -> round pillar -> bridge.

Start: the assembly board's centre within +-2 cm of (0.55, -0.20) m, +-10 deg yaw; each part
stands on its base in its own staging spot (+-1.5 cm, +-10 deg about the board's yaw); the
gripper is open above the table.

Success: every part's frame is within 3 mm of its target pose (from `cad.assembly`) and within
5 deg of its orientation (the pillars' yaw is free: only their tilt counts). Progress: placed
parts / 4, plus a quarter of the next part's closeness (0 beyond 30 cm). Step limit: 400 (FMB's
long-horizon limit is 300 for one peg; four pick-and-place moves at the speed FMB's clipped
impedance allows, about 16 cm/s, take 80-100 steps each).
"""

from __future__ import annotations

import numpy as np

from sim import panda
from sim.objects import bridge_assembly
from sim.scene import SceneObject
from sim.spatial import axis_angle_between, compose, pose, quat_from_yaw, rotation_error
from sim.tasks.base import EpisodeStart, Evaluation, Task, WorldView, register_task
from sim.tasks.grasp import start_above_table

BOARD_CENTRE = np.array([0.55, -0.20])
STAGING = {  # part key -> staging spot (x, y) [m], just beside the board
    "base": (0.42, 0.02),
    "pillar_square": (0.40, 0.13),
    "pillar_round": (0.50, 0.13),
    "bridge": (0.62, 0.04),
}
PLACED_DISTANCE = 0.003
PLACED_ANGLE = np.radians(5.0)
FREE_YAW = ("pillar_square", "pillar_round")


def part_keys(assembly) -> list[str]:
    """Scene keys of the assembly's parts, in insertion order ("base", "pillar_square", ...)."""
    return [p.name.removeprefix(f"{assembly.name}_") for p in assembly.parts]


@register_task
class AssembleTask(Task):
    """See module docstring."""

    name = "assemble"
    max_steps = 400

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        assembly = bridge_assembly(self.pool.clearance)
        keys = part_keys(assembly)
        board_yaw = rng.uniform(-1, 1) * np.radians(10.0)
        xy = BOARD_CENTRE + rng.uniform(-0.02, 0.02, 2)
        board_pose = pose([xy[0], xy[1], 0.0], quat_from_yaw(board_yaw))
        objects = [SceneObject("board", assembly.board, fixed=True)]
        poses = {"board": board_pose}
        targets, heights = {}, {}
        for key, part in zip(keys, assembly.parts):
            sx, sy = np.asarray(STAGING[key]) + rng.uniform(-0.015, 0.015, 2)
            objects.append(SceneObject(key, part))
            poses[key] = pose([sx, sy, 0.0], quat_from_yaw(board_yaw + rng.uniform(-1, 1) * np.radians(10.0)))
            frame = assembly.targets[part.name]
            targets[key] = compose(board_pose, pose(frame.position, frame.quaternion)).tolist()
            heights[key] = part.height
        info = {
            "peg": assembly.name,
            "family": "bridge_assembly",
            "size": "-",
            "length": "-",
            "order": keys,
            "requires": {k: [r.removeprefix(f"{assembly.name}_") for r in v] for k, v in assembly.requires.items()},
            "heights": heights,
            "targets": targets,
        }
        return EpisodeStart(objects, poses, start_above_table(rng), panda.GRIPPER_OPEN, False, info)

    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        placed, errors = [], {}
        for key in start.info["order"]:
            current = world.object_pose(key)
            target = np.asarray(start.info["targets"][key])
            distance = float(np.linalg.norm(current[:3] - target[:3]))
            if key in FREE_YAW:
                angle = axis_angle_between(current[3:], target[3:])
            else:
                angle = float(np.linalg.norm(rotation_error(current[3:], target[3:])))
            errors[key] = distance
            placed.append(distance <= PLACED_DISTANCE and angle <= PLACED_ANGLE)
        done = sum(placed)
        success = all(placed)
        nxt = next((k for k, p in zip(start.info["order"], placed) if not p), None)
        partial = 0.0 if nxt is None else 1 - min(1.0, errors[nxt] / 0.3)
        progress = 1.0 if success else min(0.999, (done + 0.25 * partial) / len(placed))
        metrics = {"placed": float(done), **{f"error_{k}": v for k, v in errors.items()}}
        return Evaluation(success, progress, False, metrics)
