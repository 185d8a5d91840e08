"""Procedural FMB objects: shape families -> pegs, boards, fixture, assembly -> files and sim assets.

Lengths are metres throughout; millimetres appear only in the written files (see `cad.units`).

Example:
    >>> from cad import PegSpec, get_shape, make_peg
    >>> peg = make_peg(PegSpec(get_shape("star"), size="M", length="long"))
    >>> round(peg.height, 3)
    0.15
"""

from cad.assemblies import make_assembly
from cad.assembly import Assembly, make_bridge_assembly
from cad.assembly_boards import ASSEMBLY_BOARDS
from cad.board import BoardSpec, Hole, fmb_board_spec, make_board
from cad.exceptions import CadError, DecompositionError, PrintabilityError, TilingError, UnknownShapeError
from cad.fixture import FixtureSpec, make_fixture
from cad.object_set import ObjectSet, sample_set, single_part, standard_set
from cad.part import CollisionPiece, Frame, Part, Slab
from cad.peg import PegSpec, make_peg
from cad.shape_family import SHAPES, ShapeFamily, get_shape
from cad.shapes import FMB_SHAPES
from cad.splits import SPLITS, get_split

__all__ = [
    "ASSEMBLY_BOARDS",
    "FMB_SHAPES",
    "SHAPES",
    "SPLITS",
    "Assembly",
    "BoardSpec",
    "CadError",
    "CollisionPiece",
    "DecompositionError",
    "FixtureSpec",
    "Frame",
    "Hole",
    "ObjectSet",
    "Part",
    "PegSpec",
    "PrintabilityError",
    "ShapeFamily",
    "Slab",
    "TilingError",
    "UnknownShapeError",
    "fmb_board_spec",
    "get_shape",
    "get_split",
    "make_assembly",
    "make_board",
    "make_bridge_assembly",
    "make_fixture",
    "make_peg",
    "sample_set",
    "single_part",
    "standard_set",
]
