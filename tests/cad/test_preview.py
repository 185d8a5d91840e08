"""Tests for cad.preview: contact-sheet size, content and reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from cad.board import fmb_board_spec, make_board
from cad.peg import PegSpec, make_peg
from cad.preview import render_contact_sheet
from cad.shape_family import get_shape
from fmb_core.errors import ParameterError

TILE = 120


@pytest.fixture(scope="module")
def parts():
    pegs = [make_peg(PegSpec(get_shape(name), size="S", length="short")) for name in ("star", "round", "arch")]
    return [*pegs, make_board(fmb_board_spec("S"))]


def _read(path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)


def test_sheet_has_grid_size_and_content(parts, tmp_path):
    out = render_contact_sheet(parts, tmp_path / "sheet.png", columns=3, tile_px=TILE)
    assert out == tmp_path / "sheet.png" and out.is_file()
    image = _read(out)
    assert image.shape[:2] == (2 * TILE, 3 * TILE)  # 4 parts in 3 columns -> 2 rows
    assert image[..., :3].std() > 0.05, "sheet looks blank"
    empty_tile = image[TILE:, 1 * TILE : 2 * TILE, :3]  # second row holds only the board
    assert np.all(empty_tile > 0.99), "unused tiles stay white"


def test_each_used_tile_is_drawn(parts, tmp_path):
    image = _read(render_contact_sheet(parts, tmp_path / "sheet.png", columns=2, tile_px=TILE))
    for i in range(len(parts)):
        row, col = divmod(i, 2)
        tile = image[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE, :3]
        assert (tile.mean(axis=-1) < 0.9).mean() > 0.02, f"tile {i} ({parts[i].name}) is nearly empty"


def test_title_adds_a_band_and_default_columns_are_square(parts, tmp_path):
    image = _read(render_contact_sheet(parts, tmp_path / "titled.png", tile_px=TILE, title="FMB set"))
    assert image.shape[:2] == (2 * TILE + 40, 2 * TILE)


def test_renders_are_byte_identical(parts, tmp_path):
    a = render_contact_sheet(parts[:2], tmp_path / "a.png", tile_px=TILE)
    b = render_contact_sheet(parts[:2], tmp_path / "b.png", tile_px=TILE)
    assert a.read_bytes() == b.read_bytes()


def test_creates_parent_folders(parts, tmp_path):
    out = render_contact_sheet(parts[:1], tmp_path / "new" / "dir" / "one.png", tile_px=TILE)
    assert out.is_file()


@pytest.mark.parametrize(
    "kwargs, match",
    [({"parts": []}, "at least one Part"), ({"tile_px": 10}, "tile_px"), ({"columns": 0}, "columns")],
)
def test_bad_arguments_are_rejected(parts, tmp_path, kwargs, match):
    args = {"parts": parts[:1], "out_png": tmp_path / "x.png", **kwargs}
    with pytest.raises(ParameterError, match=match):
        render_contact_sheet(**args)
