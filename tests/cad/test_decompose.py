"""Exact convex decomposition: pieces are convex and tile the region."""

from __future__ import annotations

import pytest
import shapely
from shapely import box

from cad.decompose import AREA_TOLERANCE, check_decomposition, convex_decompose
from cad.exceptions import DecompositionError
from cad.profile import offset
from cad.shape_family import get_shape
from cad.shapes import FMB_SHAPES


@pytest.mark.parametrize("name", FMB_SHAPES)
def test_peg_sections_tile_exactly(name):
    section = get_shape(name).section()
    pieces = convex_decompose(section)
    report = check_decomposition(section, pieces)
    assert abs(report.pieces_area - report.region_area) <= AREA_TOLERANCE * report.region_area
    assert report.union_error <= AREA_TOLERANCE * report.region_area
    for p in pieces:
        assert p.convex_hull.area == pytest.approx(p.area, rel=1e-9)
    # No overlap: pairwise intersections have zero area.
    tree = shapely.STRtree(pieces)
    for i, p in enumerate(pieces):
        for j in tree.query(p):
            if j != i:
                assert p.intersection(pieces[j]).area < 1e-15


def test_convex_section_is_one_piece():
    assert len(convex_decompose(get_shape("round").section())) == 1
    assert len(convex_decompose(get_shape("hexagon").section())) == 1


def test_region_with_holes():
    region = box(-0.1, -0.1, 0.1, 0.1).difference(offset(get_shape("star").section(), 0.0005))
    pieces = convex_decompose(region)
    check_decomposition(region, pieces)
    assert all(not p.interiors for p in pieces)


def test_check_rejects_bad_tiling():
    region = box(0, 0, 1, 1)
    with pytest.raises(DecompositionError):
        check_decomposition(region, [box(0, 0, 1, 0.5)])
    with pytest.raises(DecompositionError, match="not convex"):
        check_decomposition(region.difference(box(0.4, 0.4, 1, 1)), [region.difference(box(0.4, 0.4, 1, 1))])
