"""Pegs, boards, fixture and assembly: watertight solids, exact volumes, fits, collision pieces."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import Polygon

from cad.assembly import make_bridge_assembly
from cad.board import fmb_board_spec, make_board
from cad.decompose import check_decomposition
from cad.fixture import make_fixture
from cad.fmb_reference import BOARD_SIZE, LENGTHS, SIZE_FACTORS
from cad.mass import estimate_mass, solid_volume
from cad.peg import PegSpec, make_peg
from cad.printability import check_part
from cad.profile import CHORD_TOLERANCE, polygons
from cad.shape_family import get_shape
from cad.shapes import FMB_SHAPES
from cad.units import mm
from fmb_core.errors import ParameterError


@pytest.mark.parametrize("name", FMB_SHAPES)
def test_peg_without_chamfer_is_area_times_length(name):
    peg = make_peg(PegSpec(get_shape(name), size="M", length="short", tip_chamfer=0.0))
    mesh = peg.mesh()
    area = get_shape(name).section().area
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(area * LENGTHS["short"], rel=1e-9)


@pytest.mark.parametrize("name", FMB_SHAPES)
@pytest.mark.parametrize("size", ["S", "L"])
def test_chamfered_peg_volume(name, size):
    spec = PegSpec(get_shape(name), size=size, length="long")
    peg = make_peg(spec)
    mesh = peg.mesh()
    section = spec.section()
    full = section.area * spec.length_m
    lost_max = section.length * spec.tip_chamfer * spec.tip_chamfer  # perimeter x chamfer^2 bounds the cut
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(solid_volume(peg), rel=1e-9)
    assert full - lost_max < mesh.volume < full
    assert mesh.bounds[0][2] == 0.0 and mesh.bounds[1][2] == pytest.approx(spec.length_m)
    assert peg.frames["tip"].position[2] == pytest.approx(spec.length_m)


@pytest.mark.parametrize("size", list(SIZE_FACTORS))
def test_every_peg_fits_its_hole_with_the_clearance(size):
    clearance = mm(0.4)
    spec = fmb_board_spec(size, clearance=clearance)
    board = make_board(spec)
    top = max(board.slabs, key=lambda s: s.z_max)
    body = board.slabs[0]
    holes_body = [Polygon(r) for p in polygons(body.region) for r in p.interiors]
    assert len(holes_body) == 9
    for hole in spec.holes:
        peg = hole.peg_footprint()
        matching = [h for h in holes_body if h.contains(peg)]
        assert len(matching) == 1, hole.key
        gap = peg.distance(matching[0].exterior)
        assert clearance - 1e-9 <= gap <= clearance + CHORD_TOLERANCE, (hole.key, gap)
        # The widest (top) layer is wider by the chamfer, still around the same peg.
        assert top.region.distance(peg) >= clearance + spec.entry_chamfer * 0.5
    assert board.mesh().extents == pytest.approx(BOARD_SIZE)


@pytest.mark.parametrize("size", list(SIZE_FACTORS))
def test_board_collision_pieces_are_exact_and_outside_the_clearance(size):
    clearance = mm(0.5)
    board = make_board(fmb_board_spec(size, clearance=clearance))
    pieces = board.collision_pieces()
    for slab in board.collision_slabs:
        mine = [Polygon(p.polygon) for p in pieces if (p.z_min, p.z_max) == (slab.z_min, slab.z_max)]
        check_decomposition(slab.region, mine)
    tree = shapely.STRtree([Polygon(p.polygon) for p in pieces])
    keepout = board.keepout.region
    for i in tree.query(keepout.buffer(clearance * 2)):
        assert Polygon(pieces[i].polygon).distance(keepout) >= clearance - 1e-9


def test_peg_collision_pieces_tile_the_section():
    for name in FMB_SHAPES:
        peg = make_peg(PegSpec(get_shape(name)))
        body = peg.collision_slabs[0]
        mine = [Polygon(p.polygon) for p in peg.collision_pieces() if p.z_min == body.z_min]
        check_decomposition(body.region, mine)


def test_fixture_holds_every_size_L_peg():
    fixture = make_fixture()
    check_part(fixture)
    pocket_floor = fixture.frames["pocket"].position[2]
    walls = [s for s in fixture.slabs if s.z_min >= pocket_floor - 1e-12][0]
    pocket = Polygon(polygons(walls.region)[0].interiors[0])
    for name in FMB_SHAPES:
        section = get_shape(name).section(SIZE_FACTORS["L"])
        assert pocket.contains(section.buffer(mm(2.0))), name
    assert fixture.mesh().bounds[1] == pytest.approx(mm((107.7 / 2, 60.0, 76.3)))


def test_bridge_assembly_order_and_fits():
    a = make_bridge_assembly(clearance=mm(0.5))
    assert a.order == ["bridge_base", "bridge_pillar_square", "bridge_pillar_round", "bridge_bridge"]
    for i, name in enumerate(a.order):  # every prerequisite comes earlier in the order
        assert all(a.order.index(r) < i for r in a.requires[name])
    assert a.requires["bridge_bridge"] == ("bridge_pillar_square", "bridge_pillar_round")
    parts = {p.name: p for p in a.parts}
    for part in (a.board, *a.parts):
        report = check_part(part)
        assert report.watertight
    # Each part's footprint sits inside its cavity with the clearance all round.
    base_fp = polygons(parts["bridge_base"].slabs[0].region)[0]
    board_cavity = Polygon(polygons(a.board.slabs[1].region)[0].interiors[0])
    assert board_cavity.contains(base_fp)
    assert base_fp.distance(board_cavity.exterior) >= mm(0.5) - 1e-9
    # Pillars stand on the socket floors and reach above the base top into the bridge sockets.
    z = {k: f.position[2] for k, f in a.targets.items()}
    assert z["bridge_pillar_square"] == pytest.approx(z["bridge_base"] + mm(15.0))
    pillar_top = z["bridge_pillar_square"] + parts["bridge_pillar_square"].height
    assert z["bridge_bridge"] < pillar_top < z["bridge_bridge"] + parts["bridge_bridge"].height


def test_mass_estimate_is_between_infill_bounds():
    peg = make_peg(PegSpec(get_shape("rectangle")))
    solid = 1240.0 * solid_volume(peg)
    from cad.mass import PrintSettings

    m20 = estimate_mass(peg, PrintSettings(infill=0.2))
    assert estimate_mass(peg, PrintSettings(infill=1.0)) == pytest.approx(solid, rel=1e-9)
    assert 0.2 * solid < m20 < solid
    with pytest.raises(ParameterError, match="infill"):
        PrintSettings(infill=1.5)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"size": "XL"}, "size"), ({"length": "medium"}, "length"), ({"tip_chamfer": mm(5.0)}, "tip_chamfer")],
)
def test_bad_peg_specs(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        make_peg(PegSpec(get_shape("star"), **kwargs))


def test_bad_board_clearance():
    with pytest.raises(ParameterError, match=r"clearance=5 mm is out of range \[0, 3\] mm"):
        fmb_board_spec("M", clearance=mm(5.0))


def test_no_collision_piece_enters_any_clearance(standard_objects):
    """Every part that receives another (boards, assembly board, base, bridge) keeps its pieces
    at least the clearance away from the received part's footprint."""
    clearance = standard_objects.clearance
    checked = 0
    for part in standard_objects.parts:
        if part.keepout is None:
            continue
        ko = part.keepout
        pieces = [p for p in part.collision_pieces() if p.z_max > ko.z_min + 1e-12 and p.z_min < ko.z_max - 1e-12]
        polys = [Polygon(p.polygon) for p in pieces]
        tree = shapely.STRtree(polys)
        for i in tree.query(ko.region.buffer(2 * clearance)):
            assert polys[i].distance(ko.region) >= clearance - 1e-9, part.name
        checked += 1
    assert checked == 12  # 3 boards; bridge board, base, bridge; tower board, base, cap; comb board, rail, lock
