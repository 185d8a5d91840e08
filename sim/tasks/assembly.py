"""Assemble: build a multi-object assembly (FMB's multi-object tasks) from a staging area, part by
part, in the assembly's insertion order. FMB's three boards (`cad.assembly_boards`) and
procedural ones (`cad.assembly_procedural`):

    assemble             the bridge: base -> square pillar -> round pillar -> bridge (4 parts)
    assemble_tower       the tower: base -> hexagon post -> cap -> round pin (4 parts)
    assemble_comb        the comb: rail -> oval, rectangle, arch pegs -> lock bar (5 parts)
    assemble_procedural  a procedural member per episode: rail -> 2-4 pegs (-> lock bar)

`AssembleTask(board=...)` picks a board in code ("procedural_<seed>" included); the registered
names pick one on the command line.

Start: the assembly board's centre within +-2 cm of (0.55, -0.20) m, +-10 deg yaw; each part
stands on its base in its own staging spot (+-1.5 cm, +-10 deg about the board's yaw); the
gripper is open above the table.

Success: every part's frame is within 3 mm of its target pose (from `cad`) and within 5 deg of
its orientation (round parts' yaw is free: only their tilt counts). Progress: placed parts / N,
plus a quarter of the next part's closeness (0 beyond 30 cm). Step limit: 400 for four parts,
600 for the comb's five (FMB's long-horizon limit is 300 for one peg; one pick-and-place move at
the speed FMB's clipped impedance allows, about 16 cm/s, takes 80-100 steps, and the comb's lock
may need a second try over its three pegs); 700 for a procedural member's up to six.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from cad.assembly_procedural import is_procedural
from fmb_core.errors import ParameterError
from sim import panda
from sim.scene import SceneObject
from sim.spatial import axis_angle_between, compose, pose, quat_from_yaw, rotation_error
from sim.tasks.base import EpisodeStart, Evaluation, Task, WorldView, register_task
from sim.tasks.grasp import start_above_table

BOARD_CENTRE = np.array([0.55, -0.20])
PLACED_DISTANCE = 0.003
PLACED_ANGLE = np.radians(5.0)
CLEAR_MARGIN = 0.025  # [m] carried parts' bottoms pass this far above everything placed before


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a board's episode is laid out and what its expert needs to know.

    Attributes:
        staging: part key -> staging spot (x, y) [m] in the world frame, beside the board (tall
            parts 15 cm out in y: the hand, 20 cm across its fingers, passes over them).
        free_yaw: part keys whose yaw is free (round sections): only their tilt is judged.
        grasp_below_top: part key -> grasp height below the part's top [m] (others: the expert's
            default, 15 mm).
    """

    staging: dict[str, tuple[float, float]]
    free_yaw: tuple[str, ...] = ()
    grasp_below_top: dict[str, float] = dataclasses.field(default_factory=dict)


LAYOUTS: dict[str, Layout] = {
    "bridge": Layout(
        {"base": (0.42, 0.02), "pillar_square": (0.40, 0.13), "pillar_round": (0.50, 0.13), "bridge": (0.62, 0.04)},
        ("pillar_square", "pillar_round"),  # as before the boards were added: both pillars' yaw free
        {"bridge": 0.008},
    ),
    "tower": Layout(
        {"base": (0.42, 0.02), "post": (0.40, 0.15), "cap": (0.62, 0.04), "pin": (0.50, 0.15)},
        ("pin",),
        {"cap": 0.012},
    ),
    "comb": Layout(
        {
            "rail": (0.44, 0.02),
            "peg_oval": (0.38, 0.15),
            "peg_rectangle": (0.48, 0.15),
            "peg_arch": (0.58, 0.15),
            "lock": (0.50, 0.26),
        },
        (),
        {"lock": 0.008},
    ),
}
"""Board name -> layout; the names are `cad.assembly_boards.ASSEMBLY_BOARDS`'."""


def procedural_layout(keys: list[str]) -> Layout:
    """The layout of a procedural member (`cad.assembly_procedural`): rail, pegs left to right in a
    row 15 cm out, the lock (if any) beyond them; round pegs' yaw free."""
    pegs = [k for k in keys if k.startswith("peg_")]
    staging = {"rail": (0.44, 0.02), "lock": (0.50, 0.26)}
    staging.update({k: (0.38 + 0.10 * i, 0.15) for i, k in enumerate(pegs)})
    return Layout(staging, tuple(k for k in pegs if k == "peg_round"), {"lock": 0.008})


@functools.lru_cache(maxsize=64)
def board_assembly(board: str, clearance: float):
    """The cad assembly called `board` at `clearance` [m] (built once per process)."""
    from cad.assemblies import make_assembly

    return make_assembly(board, clearance)


def part_keys(assembly) -> list[str]:
    """Scene keys of the assembly's parts, in insertion order ("base", "pillar_square", ...)."""
    return [p.name.removeprefix(f"{assembly.name}_") for p in assembly.parts]


@register_task
class AssembleTask(Task):
    """See module docstring. `board`: "bridge" (default), "tower", "comb" or "procedural_<seed>"."""

    name = "assemble"
    max_steps = 400
    board = "bridge"

    def __init__(self, pool=None, placement: str = "train", board: str | None = None):
        super().__init__(pool, placement)
        board = board or type(self).board
        if board not in LAYOUTS and not is_procedural(board):
            known = ", ".join([*LAYOUTS, "procedural_<seed>"])
            raise ParameterError(f"unknown assembly board {board!r}; known: {known}", "board", board)
        self.board = board

    def _board(self, rng: np.random.Generator) -> str:
        """The board of the next episode."""
        return self.board

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        board = self._board(rng)
        assembly = board_assembly(board, self.pool.clearance)
        keys = part_keys(assembly)
        layout = LAYOUTS.get(board) or procedural_layout(keys)
        board_yaw = rng.uniform(-1, 1) * np.radians(10.0)
        xy = BOARD_CENTRE + rng.uniform(-0.02, 0.02, 2)
        board_pose = pose([xy[0], xy[1], 0.0], quat_from_yaw(board_yaw))
        objects = [SceneObject("board", assembly.board, fixed=True)]
        poses = {"board": board_pose}
        targets, heights = {}, {}
        for key, part in zip(keys, assembly.parts):
            sx, sy = np.asarray(layout.staging[key]) + rng.uniform(-0.015, 0.015, 2)
            objects.append(SceneObject(key, part))
            poses[key] = pose([sx, sy, 0.0], quat_from_yaw(board_yaw + rng.uniform(-1, 1) * np.radians(10.0)))
            frame = assembly.targets[part.name]
            targets[key] = compose(board_pose, pose(frame.position, frame.quaternion)).tolist()
            heights[key] = part.height
        # What a carried part must clear: the top of every part but the last, assembled.
        tops = [assembly.targets[p.name].position[2] + p.height for p in assembly.parts[:-1]]
        info = {
            "peg": assembly.name,
            "family": f"{assembly.name}_assembly",
            "size": "-",
            "length": "-",
            "board": board,
            "order": keys,
            "requires": {k: [r.removeprefix(f"{assembly.name}_") for r in v] for k, v in assembly.requires.items()},
            "heights": heights,
            "targets": targets,
            "free_yaw": list(layout.free_yaw),
            "grasp_below_top": dict(layout.grasp_below_top),
            "clear_height": round(max(tops) + CLEAR_MARGIN, 6),
        }
        return EpisodeStart(objects, poses, start_above_table(rng), panda.GRIPPER_OPEN, False, info)

    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        placed, errors = [], {}
        free_yaw = start.info.get("free_yaw", LAYOUTS["bridge"].free_yaw)
        for key in start.info["order"]:
            current = world.object_pose(key)
            target = np.asarray(start.info["targets"][key])
            distance = float(np.linalg.norm(current[:3] - target[:3]))
            if key in free_yaw:
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


@register_task
class AssembleTowerTask(AssembleTask):
    """`assemble` on the tower board."""

    name = "assemble_tower"
    board = "tower"


@register_task
class AssembleCombTask(AssembleTask):
    """`assemble` on the comb board (five parts, the lock over three pegs: 600 steps)."""

    name = "assemble_comb"
    max_steps = 600
    board = "comb"


@register_task
class AssembleProceduralTask(AssembleTask):
    """`assemble` on a procedural member (`cad.assembly_procedural`), a new one each episode: a
    training seed, or a held-out one when the object pool is the test side of the `procedural` split
    (`--split procedural --side test`). Up to six parts: 700 steps."""

    name = "assemble_procedural"
    max_steps = 700
    board = "procedural_1"

    def _board(self, rng: np.random.Generator) -> str:
        from cad.assembly_procedural import split_seeds

        held_out = any(spec.size == "custom" for spec in self.pool.pegs)  # the pool of sampled members
        seeds = split_seeds("test" if held_out else "train", PROCEDURAL_SEEDS)
        return f"procedural_{seeds[int(rng.integers(len(seeds)))]}"


PROCEDURAL_SEEDS = 50
"""Members each side of the split that `assemble_procedural` draws from."""
