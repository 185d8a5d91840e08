"""sim.assets: the asset cache's key follows the code that generates a part, not only its
parameters (a board's layout lives in module constants)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cad
from cad.peg import PegSpec, make_peg
from cad.shape_family import get_shape
from sim.assets import cad_fingerprint, part_key, source_fingerprint


def test_a_change_to_the_cad_source_gives_the_part_another_cache_folder(tmp_path):
    copy = tmp_path / "cad"
    shutil.copytree(Path(cad.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_fingerprint(copy)
    assert before == cad_fingerprint()  # the copy is the installed source
    board = copy / "board.py"
    board.write_text(board.read_text() + "\nHOLE_SPACING_CHANGED = True\n")
    after = source_fingerprint(copy)
    assert after != before
    peg = make_peg(PegSpec(get_shape("round"), "M", "long"))
    assert part_key(peg, before) != part_key(peg, after)
    assert part_key(peg, before) == part_key(peg) and part_key(peg).startswith(peg.name + "-")
