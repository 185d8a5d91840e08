"""Long-horizon tasks: FMB's primitives run back to back in one scene, each stage starting from
the state the previous one left (FMB's "long horizon" tasks, 300 steps).

    vertical_chain     a peg standing on its tip:  grasp -> rotate -> insert
    horizontal_chain   a peg lying on its side:    grasp -> place_on_fixture -> regrasp -> insert

The scene holds the peg, its board and (horizontal) the fixture. The peg starts in the grasp area
(0.50 +- 0.10, 0.05 +- 0.07) m; the board's centre is drawn in (0.52 +- 0.08, -0.26 +- 0.04) m
with +-10 deg yaw so that it never overlaps that area, redrawn while its target hole is out of
easy reach. Each stage is judged by its own task's check (see their modules) against targets
fixed when the episode starts, or, for what depends on how the previous stage left the peg (the
held peg's `tcp_goal`, the regrasp's grasp), when the stage starts (`sim.tasks.skill_goals`);
when a stage succeeds the next begins. Success: the last stage's check. Progress: (completed
stages + progress of the current one) / stages. `info["stage"]` is the running stage's index.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sim import panda
from sim.objects import board_for, fixture_part, peg_part
from sim.scene import SceneObject
from sim.tasks.base import TASKS, EpisodeStart, Evaluation, Task, WorldView, register_task
from sim.tasks.fixture_layout import draw_fixture_pose
from sim.tasks.grasp import STANDING_GRASP_DEPTH, grasp_info, resting_pose, start_above_table
from sim.tasks.insert import insert_info, place_board
from sim.tasks.place import place_info
from sim.tasks.regrasp import regrasp_info
from sim.tasks.rotate import rotate_info
from sim.tasks.skill_goals import commanded_in_hand, stage_targets

PEG_AREA_CENTRE = np.array([0.50, 0.05])
PEG_AREA_HALF = np.array([0.10, 0.07])
BOARD_AREA_CENTRE = np.array([0.52, -0.26])
BOARD_AREA_HALF = np.array([0.08, 0.04])


class ChainTask(Task):
    """Stages run in order; subclasses set `stages` and `standing`."""

    stages: tuple[str, ...] = ()
    standing: bool = True
    max_steps = 300

    def __init__(self, pool=None, placement: str = "train"):
        super().__init__(pool, placement)
        self.stage_tasks = [TASKS[name](self.pool) for name in self.stages]

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        spec = self.pool.draw(rng)
        peg = peg_part(spec)
        board, hole_key = board_for(spec, self.pool.clearance)
        board_pose, hole = place_board(board, hole_key, rng, BOARD_AREA_CENTRE, BOARD_AREA_HALF)
        xy = PEG_AREA_CENTRE + rng.uniform(-1, 1, 2) * PEG_AREA_HALF
        peg_pose = resting_pose(spec, xy, rng.uniform(-np.pi, np.pi), self.standing)
        objects = [SceneObject("board", board, fixed=True), SceneObject("peg", peg)]
        poses = {"board": board_pose, "peg": peg_pose}
        fixture_pose = None
        if "place_on_fixture" in self.stages:
            fixture_pose = draw_fixture_pose(rng)
            objects.append(SceneObject("fixture", fixture_part(), fixed=True))
            poses["fixture"] = fixture_pose
        infos = {
            "grasp": lambda: grasp_info(spec, peg_pose, self.standing),
            "rotate": lambda: rotate_info(spec, board.name, hole_key, hole, STANDING_GRASP_DEPTH, self.pool.clearance),
            "place_on_fixture": lambda: place_info(spec, fixture_pose),
            "regrasp": lambda: regrasp_info(spec, fixture_pose),
            "insert": lambda: insert_info(spec, board.name, hole_key, hole, STANDING_GRASP_DEPTH, self.pool.clearance),
        }
        info = {
            "peg": peg.name,
            "family": spec.shape.name,
            "size": spec.size,
            "length": spec.length,
            "board": board.name,
            "hole": hole_key,
            "stage_names": list(self.stages),
            "stages": [infos[name]() for name in self.stages],
            "stage": 0,
        }
        return EpisodeStart(objects, poses, start_above_table(rng), panda.GRIPPER_OPEN, False, info)

    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        n = len(self.stages)
        i = start.info["stage"]
        stage_start = stage_view(start, i)
        ev = self.stage_tasks[i].evaluate(world, stage_start)
        metrics = {"stage": float(i), **ev.metrics}
        if ev.success and i < n - 1:
            start.info["stage"] = i + 1  # the next stage starts from this state
            begin_stage(start.info, i + 1, world)
            return Evaluation(False, (i + 1) / n, False, metrics)
        return Evaluation(ev.success, (i + ev.progress) / n, ev.failed, metrics)


def begin_stage(info: dict, index: int, world: WorldView) -> None:
    """Add to stage `index`'s facts in the chain's `info` what it needs from the state it starts
    in (`sim.tasks.skill_goals.stage_targets`), with the in-hand pose the last grasp commanded."""
    commanded = None
    for earlier in info["stages"][:index]:
        made = commanded_in_hand(earlier)
        commanded = made if made is not None else commanded
    stage = info["stages"][index]
    added = stage_targets(info["stage_names"][index], stage, world, commanded)
    stage["targets"].update(added.pop("targets"))
    stage.update(added)


def stage_view(start: EpisodeStart, index: int) -> EpisodeStart:
    """The episode as stage `index` of a chain sees it (its own facts and targets)."""
    return dataclasses.replace(start, info=start.info["stages"][index])


@register_task
class VerticalChain(ChainTask):
    """A standing peg: grasp -> rotate -> insert."""

    name = "vertical_chain"
    stages = ("grasp", "rotate", "insert")
    standing = True


@register_task
class HorizontalChain(ChainTask):
    """A lying peg: grasp -> place_on_fixture -> regrasp -> insert."""

    name = "horizontal_chain"
    stages = ("grasp", "place_on_fixture", "regrasp", "insert")
    standing = False
