"""Printing on small beds (`cad.tiling`): tiles rebuild the part, seams miss every hole's band, tiles
fit the bed and pass the print checks, and a bed too small is one clear error with nothing written."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import shapely
import trimesh

from cad.board import BoardSpec, Hole, hole_region, make_board
from cad.export import export_set
from cad.object_set import ObjectSet
from cad.printability import PrintLimits, check_part, shell_defects
from cad.shape_family import get_shape
from cad.tiling import TilingError, fits, footprint, make_tiles, parse_bed, plan_tiles
from cad.units import mm
from fmb.cli import main
from fmb_core.errors import ParameterError

BED_180 = (mm(180.0), mm(180.0))


@pytest.fixture(scope="module")
def parts(standard_objects):
    return {p.name: p for p in standard_objects.parts}


@pytest.fixture(scope="module")
def tiled(parts):
    """board_L and the bridge board (a pocket, not holes) cut for a 180 mm bed."""
    out = {}
    for name in ("board_L", "bridge_board"):
        layout = plan_tiles(parts[name], BED_180)
        out[name] = (parts[name], layout, make_tiles(parts[name], layout))
    return out


def test_parts_that_fit_stay_whole(parts):
    for name in ("fixture", "peg_star_L_long", "bridge_base"):
        assert plan_tiles(parts[name], BED_180) is None
    assert plan_tiles(parts["board_L"], (mm(256.0), mm(256.0))) is None


@pytest.mark.parametrize("name", ["board_L", "bridge_board"])
def test_tiles_rebuild_the_part_and_fit_the_bed(tiled, name):
    part, layout, tiles = tiled[name]
    assert len(tiles) == (len(layout.seams_x) + 1) * (len(layout.seams_y) + 1) >= 4
    whole = part.mesh().volume
    volumes = [check_part(t.part).volume for t in tiles]  # every tile passes the print checks
    # The tiles hold the part less the dovetail gaps (notch = tab + clearance): < 0.5 % of it.
    assert whole * 0.995 < sum(volumes) < whole
    for tile in tiles:
        assert shell_defects(tile.part.mesh()) == (0, 1), tile.name
        x0, y0, x1, y1 = footprint(tile.part)
        assert fits((x1 - x0, y1 - y0), BED_180), (tile.name, x1 - x0, y1 - y0)
    # Outline: the tiles' bottom regions put together are the part's, but for the gaps.
    bottom = part.slabs[0].region
    joined = shapely.union_all([t.part.slabs[0].region for t in tiles])
    assert np.allclose(joined.bounds, bottom.bounds, atol=1e-9)
    gap = mm(0.2) * mm(40.0) * len(layout.joints)  # clearance x a tab's notch perimeter, per dovetail
    assert shapely.symmetric_difference(joined, bottom).area < gap
    # Tiles do not overlap (the union's area is the sum of theirs).
    assert joined.area == pytest.approx(sum(t.part.slabs[0].region.area for t in tiles), rel=1e-9)


def test_no_seam_crosses_a_hole_or_its_clearance_band(tiled, parts):
    _, layout, tiles = tiled["board_L"]
    spec = BoardSpec(
        tuple(
            Hole(h["key"], get_shape(h["shape"]["family"]), h["scale"], h["x"], h["y"], h["yaw"])
            for h in parts["board_L"].params["holes"]
        ),
        clearance=parts["board_L"].params["clearance"],
    )
    band = hole_region(spec, spec.entry_chamfer)  # the widest hole: clearance plus the entry chamfer
    lines = [shapely.LineString([(x, -1), (x, 1)]) for x in layout.seams_x]
    lines += [shapely.LineString([(-1, y), (1, y)]) for y in layout.seams_y]
    for line in lines:
        assert line.distance(band) >= PrintLimits().min_wall
    # Every hole keeps its exact shape: each hole ring of the board is a hole ring of one tile.
    top = parts["board_L"].slabs[-1].region
    holes = [shapely.Polygon(r) for r in top.interiors]
    tile_holes = [shapely.Polygon(r) for t in tiles for p in [t.part.slabs[-1].region] for r in p.interiors]
    assert len(tile_holes) == len(holes) == 9
    for hole in holes:
        assert any(h.normalize().equals_exact(hole.normalize(), 1e-12) for h in tile_holes)


def test_bed_too_small_names_the_part_and_the_smallest_bed(parts):
    with pytest.raises(TilingError, match=r"bridge_board: no tile layout fits a 120 x 120 mm bed") as err:
        plan_tiles(parts["bridge_board"], (mm(120.0), mm(120.0)))
    w, h = map(float, re.search(r"smallest bed that works: (\d+) x (\d+) mm", str(err.value)).groups())
    layout = plan_tiles(parts["bridge_board"], (mm(w), mm(h)))  # the bed it names does work
    assert layout is not None and layout.joints


def test_holes_that_leave_no_seam_position():
    holes = tuple(
        Hole(f"h{i}", get_shape("round"), 1.0, mm(-90 + 22.5 * i), mm(60 if i % 2 else -60)) for i in range(9)
    )
    board = make_board(BoardSpec(holes, name="board_dense", outline=mm((230.0, 230.0, 20.0))))
    with pytest.raises(TilingError, match=r"board_dense: .*no seam position in x.*smallest bed that works: 230 x"):
        plan_tiles(board, (mm(220.0), mm(220.0)))


@pytest.mark.parametrize("text", ["220", "220x", "axb", "220x220x10", "10x220", "220x9000"])
def test_parse_bed_rejects(text):
    with pytest.raises(ParameterError, match="--bed"):
        parse_bed(text)


def test_export_writes_tiles_manifest_and_sheet(parts, tmp_path):
    objects = ObjectSet((parts["bridge_board"], parts["bridge_pillar_round"]))
    out = tmp_path / "objects"
    manifest = export_set(objects, out, progress=False, bed=(mm(220.0), mm(210.0)), tile_clearance=mm(0.25))
    assert manifest["bed_mm"] == [220.0, 210.0] and manifest["tile_clearance_mm"] == 0.25
    assert manifest["assembly_sheet"] == "tiles.png" and (out / "tiles.png").stat().st_size > 10_000
    board, pillar = manifest["parts"]
    assert "tiles" not in pillar
    assert len(board["tiles"]) >= 2
    for tile in board["tiles"]:
        assert tile["dovetails"] and max(tile["size_mm"][:2]) <= 220.0 and min(tile["size_mm"][:2]) <= 210.0
        mesh = trimesh.load(out / tile["files"]["stl"])  # merges coincident vertices, as slicers do
        assert mesh.is_watertight and mesh.body_count == 1, tile["name"]
        assert (out / tile["files"]["3mf"]).is_file()
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_cli_bed_too_small_writes_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["cad", "part", "--shape", "round", "--bed", "60x60", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "board_round_M: no tile layout fits a 60 x 60 mm bed" in err and "smallest bed that works" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert main(["cad", "part", "--shape", "round", "--bed", "60", "--out", str(out), "--quiet"]) == 2
    assert "--bed '60': expected WIDTHxDEPTH in mm" in capsys.readouterr().err


def test_a_middle_tile_with_tabs_on_both_sides_still_fits(parts):
    bed = (mm(150.0), mm(150.0))  # the bridge board in three columns and rows: middle tiles carry two tabs
    layout = plan_tiles(parts["bridge_board"], bed)
    assert len(layout.seams_x) >= 2 or len(layout.seams_y) >= 2
    for tile in make_tiles(parts["bridge_board"], layout):
        x0, y0, x1, y1 = footprint(tile.part)
        assert fits((x1 - x0, y1 - y0), bed), (tile.name, x1 - x0, y1 - y0)
