"""Tests for cad.step_export: the STEP file re-imports to the part's volume."""

from __future__ import annotations

import sys

import pytest

from cad.board import BoardSpec, fmb_board_spec, make_board
from cad.exceptions import CadError
from cad.peg import PegSpec, make_peg
from cad.shape_family import get_shape
from cad.step_export import require_build123d, step_volume, write_step
from cad.units import mm
from fmb_core.errors import ParameterError


@pytest.fixture
def bd():
    return pytest.importorskip("build123d", reason="STEP export needs the optional [step] extra")


@pytest.fixture(scope="module")
def peg():
    return make_peg(PegSpec(get_shape("star"), size="S", length="short"))


@pytest.fixture(scope="module")
def small_board():
    """A board with one through-hole (the arch) and a chamfered entry: holes, chamfer steps."""
    arch = next(h for h in fmb_board_spec("S").holes if h.key == "arch")
    return make_board(BoardSpec(holes=(arch,), name="board_arch_S", outline=mm((80.0, 80.0, 30.0))))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["peg", "small_board"])
def test_step_reimports_to_part_volume(bd, request, tmp_path, name):
    part = request.getfixturevalue(name)
    out = write_step(part, tmp_path / f"{part.name}.step")
    assert out.is_file() and out.read_bytes().startswith(b"ISO-10303-21")
    expected = part.mesh().volume  # [m^3]
    assert step_volume(out) == pytest.approx(expected, rel=1e-3)
    solids = bd.import_step(str(out)).solids()
    assert len(solids) == 1
    assert solids[0].volume == pytest.approx(expected * 1e9, rel=1e-3)  # file is in mm


def test_step_bounding_box_is_in_millimetres(bd, peg, tmp_path):
    box = bd.import_step(str(write_step(peg, tmp_path / "peg.stp"))).bounding_box()
    assert box.max.Z - box.min.Z == pytest.approx(peg.height * 1e3, abs=1e-6)


def test_step_files_are_reproducible(bd, peg, tmp_path):
    a = write_step(peg, tmp_path / "a.step").read_bytes()
    b = write_step(peg, tmp_path / "b.step").read_bytes()
    assert a == b


def test_creates_parent_folders(bd, peg, tmp_path):
    assert write_step(peg, tmp_path / "x" / "y" / "peg.step").is_file()


def test_directory_path_is_a_clear_error(bd, peg, tmp_path):
    folder = tmp_path / "out.step"
    folder.mkdir()
    with pytest.raises(CadError, match="is a directory"):
        write_step(peg, folder)


def test_parent_that_is_a_file_is_a_clear_error(bd, peg, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(CadError, match="cannot write STEP file"):
        write_step(peg, blocker / "peg.step")


def test_wrong_ending_lists_the_known_ones(bd, peg, tmp_path):
    with pytest.raises(ParameterError, match=r"\.step, \.stp"):
        write_step(peg, tmp_path / "peg.stl")


def test_missing_volume_file_is_a_clear_error(bd, tmp_path):
    with pytest.raises(CadError, match="does not exist"):
        step_volume(tmp_path / "missing.step")


def test_missing_build123d_names_the_extra(peg, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "build123d", None)  # makes `import build123d` fail
    with pytest.raises(CadError, match=r"pip install \.\[step\]"):
        require_build123d()
    with pytest.raises(CadError, match=r"pip install \.\[step\]"):
        write_step(peg, tmp_path / "peg.step")
    assert not (tmp_path / "peg.step").exists()
