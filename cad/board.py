"""Boards: a slab with one hole per peg, each hole the peg's section offset by a clearance.

Single-object FMB boards are 230 x 230 x 50 mm with nine through-holes on a 3 x 3 grid at 70 mm
pitch, one board per peg size. Hole entries are chamfered. The board frame has its origin at the
centre of the bottom face; hole frames sit on the top face, +z out of the board.
"""

from __future__ import annotations

import dataclasses
import math

import shapely
from shapely import box

from cad import profile
from cad.exceptions import PrintabilityError
from cad.fmb_reference import BOARD_PITCH, BOARD_SIZE, SIZE_FACTORS
from cad.part import Frame, Part, Slab, stepped_slabs
from cad.shape_family import ShapeFamily, get_shape
from cad.shapes import FMB_SHAPES
from cad.units import mm
from fmb_core.errors import check_choice, check_length_mm, check_range

CLEARANCE_RANGE = (0.0, mm(3.0))
"""Allowed clearance per side [m]."""

DEFAULT_CLEARANCE = mm(0.5)
"""Gap between peg and hole wall, per side [m]: a snug but reliable fit on FDM printers."""

# (family, column, row, yaw [deg]) of the single-object boards; columns/rows in {-1, 0, 1}.
FMB_LAYOUT: tuple[tuple[str, int, int, float], ...] = (
    ("rectangle", -1, 1, 0.0),
    ("round", 0, 1, 0.0),
    ("oval", 1, 1, 0.0),
    ("hexagon", -1, 0, 0.0),
    ("arch", 0, 0, 0.0),
    ("square_circle", 1, 0, 0.0),
    ("double_square", -1, -1, 90.0),
    ("three_prong", 0, -1, 0.0),
    ("star", 1, -1, 0.0),
)


@dataclasses.dataclass(frozen=True)
class Hole:
    """One hole of a board.

    Attributes:
        key: frame name suffix ("hole_<key>").
        shape: section family of the peg that fits it.
        scale: section scale of that peg relative to size M.
        x, y: hole centre in the board frame [m].
        yaw: rotation of the section about +z [rad].
    """

    key: str
    shape: ShapeFamily
    scale: float
    x: float
    y: float
    yaw: float = 0.0

    def peg_footprint(self):
        """The peg's section placed at the hole [m]."""
        sec = profile.rotate(self.shape.section(self.scale), self.yaw)
        return profile.translate(sec, self.x, self.y)


@dataclasses.dataclass(frozen=True)
class BoardSpec:
    """A board with holes.

    Attributes:
        holes: the holes.
        name: file stem.
        clearance: gap between peg and hole wall, per side [m], in [0, 3] mm.
        outline: board x, y and height [m].
        entry_chamfer: 45-degree chamfer at each hole entry [m], in [0, 3] mm.
        layer_height: printed chamfer step [m].
        collision_chamfer_steps: chamfer slabs in the collision solid, 0-4.
        colour: filament colour.
    """

    holes: tuple[Hole, ...]
    name: str = "board"
    clearance: float = DEFAULT_CLEARANCE
    outline: tuple[float, float, float] = BOARD_SIZE
    entry_chamfer: float = mm(1.0)
    layer_height: float = mm(0.25)
    collision_chamfer_steps: int = 1
    colour: str = "jeans_blue"

    def __post_init__(self):
        check_length_mm("clearance", self.clearance, *CLEARANCE_RANGE)
        check_length_mm("entry_chamfer", self.entry_chamfer, 0.0, mm(3.0))
        check_range("collision_chamfer_steps", self.collision_chamfer_steps, 0, 4)
        for i, v in enumerate(self.outline):
            check_length_mm(f"outline[{i}]", v, mm(20.0), mm(400.0))
        if self.entry_chamfer >= self.outline[2]:
            check_length_mm("entry_chamfer", self.entry_chamfer, 0.0, self.outline[2] / 2)


def fmb_board_spec(size: str = "M", clearance: float = DEFAULT_CLEARANCE, **kwargs) -> BoardSpec:
    """FMB's single-object board for pegs of `size` ("S", "M" or "L")."""
    check_choice("size", size, SIZE_FACTORS)
    holes = tuple(
        Hole(
            key=shape,
            shape=get_shape(shape),
            scale=SIZE_FACTORS[size],
            x=col * BOARD_PITCH,
            y=row * BOARD_PITCH,
            yaw=math.radians(yaw),
        )
        for shape, col, row, yaw in FMB_LAYOUT
    )
    assert tuple(h.key for h in holes) == FMB_SHAPES
    return BoardSpec(holes=holes, name=f"board_{size}", clearance=clearance, **kwargs)


def hole_region(spec: BoardSpec, extra: float = 0.0):
    """Union of the holes offset by clearance + `extra` [m]."""
    return shapely.union_all([profile.offset(h.peg_footprint(), spec.clearance + extra) for h in spec.holes])


def make_board(spec: BoardSpec) -> Part:
    """Build the board described by `spec` (holes through the full height)."""
    lx, ly, height = spec.outline
    outline = box(-lx / 2, -ly / 2, lx / 2, ly / 2)
    body_top = height - spec.entry_chamfer
    _check_holes_apart(spec, outline)

    def at(f: float):
        return profile.normalise(outline.difference(hole_region(spec, spec.entry_chamfer * f)))

    body = [Slab(at(0.0), 0.0, body_top)]
    print_slabs = body + stepped_slabs(at, body_top, spec.entry_chamfer, spec.layer_height)
    steps = spec.collision_chamfer_steps
    if steps:
        collision = body + stepped_slabs(at, body_top, spec.entry_chamfer, spec.entry_chamfer / steps)
    else:
        collision = [Slab(at(0.0), 0.0, height)]
    frames = {
        f"hole_{h.key}": Frame((h.x, h.y, height), (0.0, 0.0, math.sin(h.yaw / 2), math.cos(h.yaw / 2)))
        for h in spec.holes
    }
    params = {
        "kind": "board",
        "outline": list(spec.outline),
        "clearance": spec.clearance,
        "entry_chamfer": spec.entry_chamfer,
        "layer_height": spec.layer_height,
        "collision_chamfer_steps": steps,
        "holes": [
            {"key": h.key, "shape": h.shape.params(), "scale": h.scale, "x": h.x, "y": h.y, "yaw": h.yaw}
            for h in spec.holes
        ],
    }
    keepout = Slab(shapely.union_all([h.peg_footprint() for h in spec.holes]), 0.0, height)
    return Part(
        name=spec.name,
        kind="board",
        slabs=tuple(print_slabs),
        collision_slabs=tuple(collision),
        params=params,
        colour=spec.colour,
        frames=frames,
        keepout=keepout,
    )


def _check_holes_apart(spec: BoardSpec, outline) -> None:
    """PrintabilityError when two holes (at their widest, the chamfer top) touch or leave the board."""
    widest = [profile.offset(h.peg_footprint(), spec.clearance + spec.entry_chamfer) for h in spec.holes]
    for i, a in enumerate(widest):
        if not outline.contains(a):
            raise PrintabilityError(f"{spec.name}: hole {spec.holes[i].key!r} runs off the board")
        for j in range(i + 1, len(widest)):
            if a.intersects(widest[j]):
                raise PrintabilityError(
                    f"{spec.name}: holes {spec.holes[i].key!r} and {spec.holes[j].key!r} overlap at "
                    f"clearance {spec.clearance * 1e3:.3g} mm; reduce the clearance or the peg size"
                )
