"""The pool of objects episodes draw from, and the cad parts behind it (built once, cached).

A pool is a list of peg specs (FMB's 54, a split side of them, or sampled members). Boards come
with the peg: FMB pegs use the single-object board of their size (nine holes, the target hole is
the peg's family); other pegs get a one-hole board. Parts are cached per process.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from cad.board import DEFAULT_CLEARANCE, BoardSpec, Hole, fmb_board_spec, make_board
from cad.fixture import make_fixture
from cad.fmb_reference import LENGTHS, SIZE_FACTORS
from cad.part import Part
from cad.peg import PegSpec, make_peg
from cad.shape_family import canonical_shape_name, get_shape
from cad.shapes import FMB_SHAPES
from cad.splits import get_split
from cad.units import mm
from fmb_core.errors import ParameterError, check_choice


@dataclasses.dataclass(frozen=True)
class ObjectPool:
    """Pegs to draw from.

    Attributes:
        pegs: candidate pegs.
        clearance: hole clearance per side [m].
    """

    pegs: tuple[PegSpec, ...]
    clearance: float = DEFAULT_CLEARANCE

    def __post_init__(self):
        if not self.pegs:
            raise ParameterError("the object pool is empty: no peg matches the requested families/sizes/split")

    @classmethod
    def fmb(
        cls,
        families: tuple[str, ...] | None = None,
        sizes: tuple[str, ...] | None = None,
        lengths: tuple[str, ...] | None = None,
        split: str = "all",
        side: str = "train",
        clearance: float = DEFAULT_CLEARANCE,
    ) -> ObjectPool:
        """FMB's pegs, optionally restricted to families, sizes, lengths and one side of a split."""
        families = tuple(canonical_shape_name(f) for f in (families or FMB_SHAPES))
        sizes = tuple(check_choice("size", s, SIZE_FACTORS) for s in (sizes or tuple(SIZE_FACTORS)))
        lengths = tuple(check_choice("length", n, LENGTHS) for n in (lengths or tuple(LENGTHS)))
        check_choice("side", side, ("train", "test"))
        chosen = get_split(split)
        pegs = tuple(
            spec
            for f in families
            for s in sizes
            for n in lengths
            if chosen.side(spec := PegSpec(get_shape(f), size=s, length=n)) == side
        )
        return cls(pegs, clearance)

    @classmethod
    def of_split(
        cls,
        split: str = "all",
        side: str = "train",
        families: tuple[str, ...] | None = None,
        sizes: tuple[str, ...] | None = None,
        clearance: float = DEFAULT_CLEARANCE,
    ) -> ObjectPool:
        """The pegs on `side` of `split`: FMB's (see `fmb`) except on the test side of
        `procedural`, whose pegs are sampled members of the families (PROCEDURAL_MEMBERS of each,
        seed PROCEDURAL_SEED; `sizes` does not apply to them)."""
        if split == "procedural" and check_choice("side", side, ("train", "test")) == "test":
            families = tuple(canonical_shape_name(f) for f in (families or FMB_SHAPES))
            return cls(procedural_pegs(families), clearance)
        return cls.fmb(families=families, sizes=sizes, split=split, side=side, clearance=clearance)

    def draw(self, rng: np.random.Generator) -> PegSpec:
        """One peg, uniformly."""
        return self.pegs[int(rng.integers(len(self.pegs)))]


PROCEDURAL_MEMBERS = 2
"""Sampled members of each family on the test side of the `procedural` split (18 pegs)."""
PROCEDURAL_SEED = 0
"""Seed of those members (cad.object_set.sample_members): the same pegs in every run."""


@functools.lru_cache(maxsize=16)
def procedural_pegs(families: tuple[str, ...] = FMB_SHAPES) -> tuple[PegSpec, ...]:
    """The procedural split's test pegs of `families`: sampled members, not FMB's sizes."""
    from cad.object_set import sample_members

    return tuple(spec for f in families for spec in sample_members(f, PROCEDURAL_MEMBERS, PROCEDURAL_SEED))


@functools.lru_cache(maxsize=1)
def _fmb_pegs() -> dict[str, PegSpec]:
    return {spec.part_name: spec for spec in ObjectPool.fmb().pegs}


def peg_spec(part_name: str) -> PegSpec | None:
    """The spec of the peg part called `part_name`: one of FMB's 54 or a sampled member
    (`peg_<family>_s<seed>_<index>`, rebuilt from its seed); None when no peg has that name."""
    from cad.object_set import sampled_member

    return _fmb_pegs().get(part_name) or sampled_member(part_name)


def board_for(spec: PegSpec, clearance: float) -> tuple[Part, str]:
    """(board part, name of the target hole frame) for peg `spec`."""
    if spec.size in SIZE_FACTORS and spec.shape == get_shape(spec.shape.name):
        return _fmb_board(spec.size, clearance), f"hole_{spec.shape.name}"
    return _one_hole_board(spec, clearance), "hole_target"


def peg_part(spec: PegSpec) -> Part:
    return _peg(spec)


@functools.lru_cache(maxsize=64)
def _peg(spec: PegSpec) -> Part:
    return make_peg(spec)


@functools.lru_cache(maxsize=8)
def _fmb_board(size: str, clearance: float) -> Part:
    return make_board(fmb_board_spec(size, clearance=clearance))


@functools.lru_cache(maxsize=32)
def _one_hole_board(spec: PegSpec, clearance: float) -> Part:
    hole = Hole("target", spec.shape, spec.section_scale, 0.0, 0.0)
    side = max(spec.shape.width, spec.shape.depth) * spec.section_scale + mm(60.0)
    return make_board(
        BoardSpec((hole,), name=f"board_{spec.part_name}", clearance=clearance, outline=(side, side, mm(50.0)))
    )


@functools.lru_cache(maxsize=1)
def fixture_part() -> Part:
    return make_fixture()


@functools.lru_cache(maxsize=2)
def bridge_assembly(clearance: float):
    """The cad bridge assembly (board and four parts) at `clearance` [m]."""
    from cad.assembly import make_bridge_assembly

    return make_bridge_assembly(clearance=clearance)
