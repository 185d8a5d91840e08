"""The three assembly boards: order, print checks, fits at the clearance (2D), exact collision pieces."""

from __future__ import annotations

import itertools

import pytest
import shapely
from shapely.geometry import Polygon

from cad.assembly_boards import ASSEMBLY_BOARDS, make_assembly
from cad.exceptions import ParameterError
from cad.printability import check_part
from cad.profile import CHORD_TOLERANCE, translate
from cad.units import mm

CLEARANCE = mm(0.5)


@pytest.fixture(scope="module", params=sorted(ASSEMBLY_BOARDS))
def assembly(request):
    return make_assembly(request.param, CLEARANCE)


def _placed_slabs(assembly):
    """part name -> [(region in the board frame, z_min, z_max)] of the assembled parts [m]."""
    out = {assembly.board.name: [(s.region, s.z_min, s.z_max) for s in assembly.board.slabs]}
    for part in assembly.parts:
        (x, y, z), quaternion = assembly.targets[part.name]
        assert quaternion == (0.0, 0.0, 0.0, 1.0)  # every target is upright, unturned
        out[part.name] = [(translate(s.region, x, y), s.z_min + z, s.z_max + z) for s in part.slabs]
    return out


def _gap(a, b) -> float:
    """Least 2D distance between two placed parts' slabs that overlap in height [m] (inf if none)."""
    gaps = [
        ra.distance(rb) for (ra, a0, a1), (rb, b0, b1) in itertools.product(a, b) if min(a1, b1) - max(a0, b0) > 1e-9
    ]
    return min(gaps, default=float("inf"))


def test_order_respects_requires(assembly):
    assert 3 <= len(assembly.parts) <= 5
    order = assembly.order
    for i, name in enumerate(order):
        assert all(order.index(r) < i for r in assembly.requires[name]), name
    assert set(assembly.targets) == set(order)


def test_every_part_passes_the_print_checks(assembly):
    for part in (assembly.board, *assembly.parts):
        assert check_part(part).watertight, part.name
        assert max(part.mesh().extents[:2]) <= mm(230.0) + 1e-9, part.name


def test_parts_fit_their_cavities_at_the_clearance(assembly):
    """Assembled, no two parts come closer than the clearance at any height, and each part is the
    clearance from what receives it (its prerequisites; the first part: the board), to within the
    polygonised arcs' tolerance (`cad.profile.offset`: the clearance is a lower bound)."""
    placed = _placed_slabs(assembly)
    for a, b in itertools.combinations(placed, 2):
        assert _gap(placed[a], placed[b]) >= CLEARANCE - 1e-9, (a, b)
    first = assembly.order[0]
    joints = [(assembly.board.name, first)] + [(r, n) for n in assembly.order for r in assembly.requires[n]]
    for a, b in joints:
        assert CLEARANCE - 1e-9 <= _gap(placed[a], placed[b]) <= CLEARANCE + CHORD_TOLERANCE, (a, b)


def test_collision_pieces_are_exact(assembly):
    """The convex pieces of each collision slab tile its region: same area, nothing outside."""
    for part in (assembly.board, *assembly.parts):
        pieces = part.collision_pieces()
        for slab in part.collision_slabs:
            polys = [Polygon(p.polygon) for p in pieces if p.z_min == slab.z_min and p.z_max == slab.z_max]
            union = shapely.union_all(polys)
            assert sum(p.area for p in polys) == pytest.approx(slab.region.area, rel=1e-6), part.name
            assert union.symmetric_difference(slab.region).area <= 1e-6 * slab.region.area, part.name


def test_unknown_board_names_the_known_ones():
    with pytest.raises(ParameterError, match="unknown assembly board 'castle'; known: bridge, tower, comb"):
        make_assembly("castle")
