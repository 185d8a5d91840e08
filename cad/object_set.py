"""Object sets: the standard FMB set, single parts, and procedurally sampled members.

An `ObjectSet` is a list of parts plus assemblies (whose board and parts are also in the list),
with the seed and the settings that made it.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from cad.assemblies import make_assembly
from cad.assembly import Assembly
from cad.assembly_boards import ASSEMBLY_BOARDS
from cad.board import DEFAULT_CLEARANCE, BoardSpec, Hole, fmb_board_spec, make_board
from cad.fixture import make_fixture
from cad.fmb_reference import BOARD_PITCH, LENGTHS, SIZE_FACTORS
from cad.part import Part
from cad.peg import PegSpec, make_peg
from cad.printability import PrintLimits, check_features
from cad.shape_family import SHAPES, canonical_shape_name, get_shape
from cad.shapes import FMB_SHAPES
from cad.units import mm
from fmb_core.errors import ParameterError, check_range

MAX_SAMPLED_SECTION = mm(60.0)
"""Largest sampled section side [m], so that sampled pegs fit a 70 mm board grid."""


@dataclasses.dataclass(frozen=True)
class ObjectSet:
    """Parts to print and simulate.

    Attributes:
        parts: every part, pegs first.
        assemblies: multi-object assemblies (their parts are also in `parts`).
        seed: seed that made the set (None for the fixed FMB set).
        clearance: hole clearance per side [m].
        pegs: for each peg part name, the spec that made it.
    """

    parts: tuple[Part, ...]
    assemblies: tuple[Assembly, ...] = ()
    seed: int | None = None
    clearance: float = DEFAULT_CLEARANCE
    pegs: dict[str, PegSpec] = dataclasses.field(default_factory=dict)


def standard_set(clearance: float = DEFAULT_CLEARANCE) -> ObjectSet:
    """FMB's single-object set (54 pegs, 3 boards, the fixture) plus the three assemblies
    (`cad.assembly_boards.ASSEMBLY_BOARDS`: bridge, tower, comb)."""
    specs = [
        PegSpec(get_shape(shape), size=size, length=length)
        for size in SIZE_FACTORS
        for shape in FMB_SHAPES
        for length in LENGTHS
    ]
    pegs = [make_peg(s) for s in specs]
    boards = [make_board(fmb_board_spec(size, clearance=clearance)) for size in SIZE_FACTORS]
    assemblies = tuple(make_assembly(name, clearance) for name in ASSEMBLY_BOARDS)
    assembly_parts = [part for a in assemblies for part in (a.board, *a.parts)]
    parts = (*pegs, *boards, make_fixture(), *assembly_parts)
    return ObjectSet(parts, assemblies, None, clearance, {p.name: s for p, s in zip(pegs, specs)})


def single_part(shape: str, size: str, length: str, clearance: float = DEFAULT_CLEARANCE) -> ObjectSet:
    """One peg and a one-hole board that fits it."""
    spec = PegSpec(get_shape(shape), size=size, length=length)
    peg = make_peg(spec)
    board = make_board(_grid_board([spec], f"board_{spec.shape.name}_{size}", clearance))
    return ObjectSet((peg, board), (), None, clearance, {peg.name: spec})


def sample_set(
    family: str, count: int, seed: int, clearance: float = DEFAULT_CLEARANCE, limits: PrintLimits = PrintLimits()
) -> ObjectSet:
    """`count` new members of `family` ("all" for every FMB family) and boards that fit them.

    Members are drawn from `numpy.random.default_rng([seed, family_index])` and rejected until
    their section passes the feature-size check and fits the board grid, so the same seed always
    gives the same members. Lengths alternate short/long. Boards hold up to 9 pegs each.
    """
    check_range("count", count, 1, 1000)
    check_range("seed", seed, 0, 2**32 - 1)
    if int(count) != count:
        raise ParameterError(f"count must be an integer, got {count!r}")
    specs = list(sample_members(family, count, seed, limits))
    pegs = [make_peg(s) for s in specs]
    boards = [
        make_board(_grid_board(specs[k : k + 9], f"board_s{seed}_{k // 9:02d}", clearance))
        for k in range(0, len(specs), 9)
    ]
    return ObjectSet((*pegs, *boards), (), seed, clearance, {p.name: s for p, s in zip(pegs, specs)})


def sample_members(family: str, count: int, seed: int, limits: PrintLimits = PrintLimits()) -> tuple[PegSpec, ...]:
    """The specs of `sample_set(family, count, seed)`'s pegs, without building their meshes: `count`
    members of each family (`family` "all": every FMB family, in FMB_SHAPES order), named
    `peg_<family>_s<seed>_<index>`, lengths alternating short/long."""
    families = list(FMB_SHAPES) if family == "all" else [canonical_shape_name(family)]
    specs: list[PegSpec] = []
    for fam in families:
        rng = np.random.default_rng([seed, FMB_SHAPES.index(fam)])
        for i in range(int(count)):
            shape = _sample_member(SHAPES[fam], rng, limits)
            length = ("short", "long")[i % 2]
            specs.append(PegSpec(shape, size="custom", length=length, name=f"peg_{fam}_s{seed}_{i:03d}"))
    return tuple(specs)


_SAMPLED_NAME = re.compile(r"peg_(?P<family>[a-z_]+)_s(?P<seed>[0-9]+)_(?P<index>[0-9]{3})")


def sampled_member(name: str, limits: PrintLimits = PrintLimits()) -> PegSpec | None:
    """The spec of the sampled peg part called `name` (`peg_<family>_s<seed>_<index>`, as
    `sample_members` names them), rebuilt from its seed; None for any other name."""
    match = _SAMPLED_NAME.fullmatch(str(name))
    if not match or match["family"] not in FMB_SHAPES:
        return None
    index = int(match["index"])
    return sample_members(match["family"], index + 1, int(match["seed"]), limits)[index]


def _sample_member(cls, rng: np.random.Generator, limits: PrintLimits, tries: int = 200):
    for _ in range(tries):
        try:
            shape = cls.sample(rng)
            section = shape.section()
        except ParameterError:
            continue
        if max(shape.width, shape.depth) > MAX_SAMPLED_SECTION:
            continue
        try:
            check_features(section, limits.min_feature)
        except Exception:  # noqa: BLE001 - any failure means: draw again
            continue
        return shape
    raise ParameterError(f"could not sample a printable {cls.name} in {tries} tries")


def _grid_board(specs: list[PegSpec], name: str, clearance: float) -> BoardSpec:
    """A board with the pegs' holes on a square grid at FMB's pitch, sized to fit."""
    n = len(specs)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    holes = []
    for i, spec in enumerate(specs):
        r, c = divmod(i, cols)
        x = (c - (cols - 1) / 2) * BOARD_PITCH
        y = ((rows - 1) / 2 - r) * BOARD_PITCH
        holes.append(Hole(spec.part_name.removeprefix("peg_"), spec.shape, spec.section_scale, x, y))
    lx = max(cols * BOARD_PITCH + mm(20.0), mm(90.0))
    ly = max(rows * BOARD_PITCH + mm(20.0), mm(90.0))
    return BoardSpec(tuple(holes), name=name, clearance=clearance, outline=(lx, ly, mm(50.0)))
