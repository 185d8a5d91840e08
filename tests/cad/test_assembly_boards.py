"""The assembly boards (FMB's three and procedural members): order, print checks, fits at the
clearance (2D), exact collision pieces; the procedural generator's determinism and split."""

from __future__ import annotations

import itertools

import pytest
import shapely
from shapely.geometry import Polygon

from cad.assemblies import make_assembly
from cad.assembly_boards import ASSEMBLY_BOARDS
from cad.assembly_procedural import make_procedural_assembly, side, split_seeds
from cad.exceptions import ParameterError
from cad.printability import check_part
from cad.profile import CHORD_TOLERANCE, translate
from cad.units import mm

CLEARANCE = mm(0.5)


# Two procedural members: 0 (held out, with a lock bar) and 6 (training, four pegs and a lock bar).
@pytest.fixture(scope="module", params=[*sorted(ASSEMBLY_BOARDS), "procedural_0", "procedural_6"])
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
    assert 3 <= len(assembly.parts) <= 6
    order = assembly.order
    for i, name in enumerate(order):
        assert all(order.index(r) < i for r in assembly.requires[name]), name
    assert set(assembly.targets) == set(order)


def test_every_part_passes_the_print_checks(assembly):
    for part in (assembly.board, *assembly.parts):
        assert check_part(part).watertight, part.name
        limit = mm(230.0) if assembly.name == "bridge" else mm(180.0)  # the others print whole on 180 mm
        assert max(part.mesh().extents[:2]) <= limit + 1e-9, part.name


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
    with pytest.raises(
        ParameterError, match="unknown assembly board 'castle'; known: bridge, tower, comb, procedural_"
    ):
        make_assembly("castle")
    with pytest.raises(ParameterError, match="seed"):
        make_procedural_assembly(-1)


@pytest.mark.slow
def test_procedural_members_are_seeded_and_split():
    a, b = make_procedural_assembly(5), make_procedural_assembly(5)
    assert a.order == b.order and a.targets == b.targets
    assert [p.mesh().volume for p in a.parts] == pytest.approx([p.mesh().volume for p in b.parts])
    assert make_procedural_assembly(7).order != a.order
    train, test = split_seeds("train", 30), split_seeds("test", 10)
    assert not set(train) & set(test) and all(side(s) == "test" for s in test)
    for seed in range(12):  # every member prints, fits a 180 mm bed, and has its parts in order
        m = make_procedural_assembly(seed)
        assert 3 <= len(m.parts) <= 6 and m.order[0].endswith("_rail")
        assert all(check_part(p).watertight for p in (m.board, *m.parts))
        assert max(m.board.mesh().extents[:2]) <= mm(180.0) + 1e-9
