"""Pegs: a cross-section extruded along +z, flat base on z=0, chamfered tip at z=length."""

from __future__ import annotations

import dataclasses

from cad import profile
from cad.fmb_reference import COLOURS, LENGTHS, SIZE_FACTORS
from cad.part import Frame, Part, Slab, stepped_slabs
from cad.shape_family import ShapeFamily
from cad.units import mm
from fmb_core.errors import ParameterError, check_choice, check_length_mm, check_range

SHAPE_COLOURS: dict[str, str] = {
    "rectangle": "red",
    "round": "yellow",
    "oval": "green",
    "hexagon": "jeans_blue",
    "arch": "purple",
    "square_circle": "jeans_red",
    "double_square": "dark_blue",
    "three_prong": "brown",
    "star": "red",
}
"""Filament colour of each FMB family (sampled families take their parent's)."""


@dataclasses.dataclass(frozen=True)
class PegSpec:
    """Everything that defines a peg.

    Attributes:
        shape: the cross-section family member.
        size: "S", "M" or "L" (see `cad.fmb_reference.SIZE_FACTORS`), or "custom" with `scale`.
        length: "short" (100 mm) or "long" (150 mm).
        scale: section scale for size "custom", in [0.5, 1.6].
        tip_chamfer: 45-degree chamfer at the tip [m], in [0, 3] mm.
        layer_height: printed chamfer step [m], in [0.05, 0.5] mm.
        collision_chamfer_steps: slabs for the chamfer in the simulator's collision solid, 0-4.
        name: file stem; default "peg_<family>_<size>_<length>".
        colour: filament colour; default by family.
    """

    shape: ShapeFamily
    size: str = "M"
    length: str = "long"
    scale: float = 1.0
    tip_chamfer: float = mm(1.0)
    layer_height: float = mm(0.25)
    collision_chamfer_steps: int = 1
    name: str = ""
    colour: str = ""

    def __post_init__(self):
        check_choice("size", self.size, [*SIZE_FACTORS, "custom"])
        check_choice("length", self.length, LENGTHS)
        check_range("scale", self.scale, 0.5, 1.6)
        check_length_mm("tip_chamfer", self.tip_chamfer, 0.0, mm(3.0))
        check_length_mm("layer_height", self.layer_height, mm(0.05), mm(0.5))
        check_range("collision_chamfer_steps", self.collision_chamfer_steps, 0, 4)
        if self.colour:
            check_choice("colour", self.colour, COLOURS)

    @property
    def section_scale(self) -> float:
        """Scale of the section relative to the family's nominal (size M) section."""
        return self.scale if self.size == "custom" else SIZE_FACTORS[self.size]

    @property
    def length_m(self) -> float:
        """Peg length [m]."""
        return LENGTHS[self.length]

    @property
    def part_name(self) -> str:
        return self.name or f"peg_{self.shape.name}_{self.size}_{self.length}"

    def section(self):
        """Cross-section polygon [m], centred on its bounding box."""
        return self.shape.section(self.section_scale)


def make_peg(spec: PegSpec) -> Part:
    """Build the peg described by `spec`.

    Frames: "base" (z=0, the printed face) and "tip" (z=length, the insertion end; its +z axis
    points out of the peg, so inserting means moving the tip frame along its -z).
    """
    section = spec.section()
    length = spec.length_m
    inset_limit = _max_inset(section)
    if spec.tip_chamfer >= inset_limit:
        raise ParameterError(
            f"tip_chamfer={spec.tip_chamfer * 1e3:.3g} mm is too large for {spec.part_name}: "
            f"must be below {inset_limit * 1e3:.3g} mm"
        )
    body_top = length - spec.tip_chamfer
    body = [Slab(section, 0.0, body_top)]

    def at(f: float):
        return profile.offset(section, -spec.tip_chamfer * f)

    print_slabs = body + stepped_slabs(at, body_top, spec.tip_chamfer, spec.layer_height)
    steps = spec.collision_chamfer_steps
    coll_step = spec.tip_chamfer / steps if steps else spec.tip_chamfer
    collision = (
        body + stepped_slabs(at, body_top, spec.tip_chamfer, coll_step)
        if steps
        else [Slab(section, 0.0, length)]
    )
    params = {
        "kind": "peg",
        "shape": spec.shape.params(),
        "size": spec.size,
        "section_scale": spec.section_scale,
        "length": length,
        "tip_chamfer": spec.tip_chamfer,
        "layer_height": spec.layer_height,
        "collision_chamfer_steps": steps,
    }
    frames = {"base": Frame((0.0, 0.0, 0.0)), "tip": Frame((0.0, 0.0, length))}
    return Part(
        name=spec.part_name,
        kind="peg",
        slabs=tuple(print_slabs),
        collision_slabs=tuple(collision),
        params=params,
        colour=spec.colour or SHAPE_COLOURS.get(spec.shape.name, "red"),
        frames=frames,
    )


def _max_inset(section) -> float:
    """Largest inward offset that leaves a non-empty section [m] (bisection, 0.01 mm)."""
    lo, hi = 0.0, max(section.bounds[2] - section.bounds[0], section.bounds[3] - section.bounds[1])
    while hi - lo > mm(0.01):
        mid = (lo + hi) / 2
        if section.buffer(-mid).is_empty:
            hi = mid
        else:
            lo = mid
    return lo
