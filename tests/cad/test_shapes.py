"""Shape families: FMB dimensions, registry, sampling, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cad.exceptions import UnknownShapeError
from cad.fmb_reference import SIZE_FACTORS, SIZE_M_SECTIONS
from cad.profile import CHORD_TOLERANCE
from cad.shape_family import SHAPES, canonical_shape_name, get_shape
from cad.shapes import FMB_SHAPES
from fmb_core.errors import ParameterError


def test_nine_families_registered():
    assert set(FMB_SHAPES) == set(SHAPES) and len(FMB_SHAPES) == 9


@pytest.mark.parametrize("name", FMB_SHAPES)
@pytest.mark.parametrize("size", list(SIZE_FACTORS))
def test_section_matches_fmb_bounding_box(name, size):
    section = get_shape(name).section(SIZE_FACTORS[size])
    x0, y0, x1, y1 = section.bounds
    w, d = SIZE_M_SECTIONS[name]
    k = SIZE_FACTORS[size]
    assert section.is_valid and section.geom_type == "Polygon"
    assert x1 - x0 == pytest.approx(w * k, abs=1e-9)
    assert y1 - y0 == pytest.approx(d * k, abs=1e-9)
    assert abs(x0 + x1) < 1e-9 and abs(y0 + y1) < 1e-9  # centred on its bounding box
    assert section.exterior.is_ccw


def test_round_section_area_is_circle():
    d = SIZE_M_SECTIONS["round"][0]
    area = get_shape("round").section().area
    # Vertices on the circle, chords within CHORD_TOLERANCE of it: the area deficit of the
    # inscribed polygon is about (4/3) * tolerance / radius.
    assert area == pytest.approx(np.pi * d**2 / 4, rel=2 * CHORD_TOLERANCE / (d / 2))
    assert area < np.pi * d**2 / 4


def test_non_convex_families_are_non_convex():
    for name in ("square_circle", "double_square", "three_prong", "star"):
        s = get_shape(name).section()
        assert s.convex_hull.area > s.area * 1.02, name
    for name in ("rectangle", "round", "oval", "hexagon", "arch"):
        s = get_shape(name).section()
        assert s.convex_hull.area == pytest.approx(s.area, rel=1e-6), name


@pytest.mark.parametrize(
    "alias,canonical",
    [
        ("3-prong", "three_prong"),
        ("Square-Circle", "square_circle"),
        ("double square", "double_square"),
        ("hex", "hexagon"),
    ],
)
def test_aliases(alias, canonical):
    assert canonical_shape_name(alias) == canonical


def test_unknown_shape_lists_known():
    with pytest.raises(UnknownShapeError) as e:
        get_shape("pentagon")
    msg = str(e.value)
    assert "pentagon" in msg and all(n in msg for n in FMB_SHAPES)


@pytest.mark.parametrize(
    "name,field,value",
    [
        ("star", "points", 3),
        ("star", "inner_ratio", 0.1),
        ("three_prong", "prongs", 9),
        ("arch", "shoulder", 0.95),
        ("rectangle", "width", 1.0),
        ("double_square", "neck", 0.05),
    ],
)
def test_bad_shape_parameters_name_the_field(name, field, value):
    with pytest.raises(ParameterError, match=field):
        dataclasses.replace(get_shape(name), **{field: value})


@pytest.mark.parametrize("name", FMB_SHAPES)
def test_sampling_is_seeded_and_valid(name):
    a = [SHAPES[name].sample(np.random.default_rng(7)) for _ in range(3)]
    b = [SHAPES[name].sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    members = [SHAPES[name].sample(np.random.default_rng(s)) for s in range(6)]
    assert len({m for m in members}) > 1  # actually varies
    for m in members:
        assert m.section().is_valid
