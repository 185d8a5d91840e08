"""The reorientation fixture: a block with a square pocket that holds any peg upright.

FMB's horizontal-peg task places a lying peg into the fixture standing up, lets go, and grasps it
again from above. Our fixture keeps FMB's outline (107.7 x 120 x 76.3 mm) and cuts a pocket wide
enough for the largest size-L section with room to spare, with a chamfered entry that guides the
peg in. Frame: origin at the centre of the bottom face; "pocket" on the pocket floor, "top" on the
top face, both +z up.
"""

from __future__ import annotations

import dataclasses

from shapely import box

from cad import profile
from cad.fmb_reference import FIXTURE_SIZE
from cad.part import Frame, Part, Slab, stepped_slabs
from cad.units import mm
from fmb_core.errors import ParameterError, check_length_mm


@dataclasses.dataclass(frozen=True)
class FixtureSpec:
    """Reorientation fixture parameters.

    Attributes:
        outline: block x, y and height [m].
        pocket: side of the square pocket [m].
        pocket_depth: depth of the pocket below the top face [m].
        entry_chamfer: chamfer at the pocket entry [m].
        corner_radius: fillet of the block's vertical edges [m].
        layer_height: printed chamfer step [m].
        collision_chamfer_steps: chamfer slabs in the collision solid.
    """

    outline: tuple[float, float, float] = FIXTURE_SIZE
    pocket: float = mm(72.0)
    pocket_depth: float = mm(40.0)
    entry_chamfer: float = mm(3.0)
    corner_radius: float = mm(5.0)
    layer_height: float = mm(0.25)
    collision_chamfer_steps: int = 2
    name: str = "fixture"
    colour: str = "dark_blue"

    def __post_init__(self):
        lx, ly, h = self.outline
        check_length_mm("pocket", self.pocket, mm(20.0), min(lx, ly) - mm(10.0))
        check_length_mm("pocket_depth", self.pocket_depth, mm(5.0), h - mm(5.0))
        check_length_mm("entry_chamfer", self.entry_chamfer, 0.0, self.pocket_depth / 2)
        if not 0 <= self.collision_chamfer_steps <= 4:
            raise ParameterError(f"collision_chamfer_steps={self.collision_chamfer_steps} is out of range [0, 4]")


def make_fixture(spec: FixtureSpec = FixtureSpec()) -> Part:
    """Build the reorientation fixture."""
    lx, ly, h = spec.outline
    outline = profile.round_corners(box(-lx / 2, -ly / 2, lx / 2, ly / 2), spec.corner_radius, 0.0)
    floor = h - spec.pocket_depth
    wall_top = h - spec.entry_chamfer

    def at(f: float):
        half = spec.pocket / 2 + spec.entry_chamfer * f
        return profile.normalise(outline.difference(box(-half, -half, half, half)))

    base = [Slab(outline, 0.0, floor), Slab(at(0.0), floor, wall_top)]
    print_slabs = base + stepped_slabs(at, wall_top, spec.entry_chamfer, spec.layer_height)
    steps = spec.collision_chamfer_steps
    collision = (
        base + stepped_slabs(at, wall_top, spec.entry_chamfer, spec.entry_chamfer / steps)
        if steps
        else [Slab(outline, 0.0, floor), Slab(at(0.0), floor, h)]
    )
    params = {
        "kind": "fixture",
        "outline": list(spec.outline),
        "pocket": spec.pocket,
        "pocket_depth": spec.pocket_depth,
        "entry_chamfer": spec.entry_chamfer,
        "corner_radius": spec.corner_radius,
        "collision_chamfer_steps": steps,
    }
    frames = {"pocket": Frame((0.0, 0.0, floor)), "top": Frame((0.0, 0.0, h))}
    return Part(spec.name, "fixture", tuple(print_slabs), tuple(collision), params, spec.colour, frames)
