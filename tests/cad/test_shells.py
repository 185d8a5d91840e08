"""One manifold shell per exported part: every edge of the written file shared by exactly two faces,
one body; the print check refuses meshes that only look watertight on their own vertex indices."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from cad.exceptions import PrintabilityError
from cad.printability import check_part, shell_defects


def test_every_exported_part_is_one_manifold_shell(exported_set):
    out, manifest = exported_set
    for entry in manifest["parts"]:
        mesh = trimesh.load(out / entry["files"]["stl"])  # an STL loader merges coincident vertices
        edges = np.sort(mesh.edges, axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert np.all(counts == 2), (entry["name"], int(np.sum(counts != 2)))
        assert mesh.body_count == 1, entry["name"]


def _with_mesh(part, mesh):
    part.__dict__["_mesh"] = mesh  # Part caches its mesh: stand a hand-made one in for the check
    return part


@pytest.mark.parametrize(
    "gap,message",
    [(0.0, r"fixture: 4 edges are not shared by exactly two faces"), (0.01, r"fixture: the print file holds 2 shells")],
)
def test_print_check_refuses_touching_or_separate_shells(gap, message):
    from cad.fixture import make_fixture

    lower = trimesh.creation.box((0.02, 0.02, 0.01))
    lower.apply_translation((0, 0, 0.005))
    upper = lower.copy()
    upper.apply_translation((0, 0, 0.01 + gap))
    glued = trimesh.Trimesh(
        np.vstack([lower.vertices, upper.vertices]), np.vstack([lower.faces, upper.faces + 8]), process=False
    )
    assert glued.is_watertight  # on its own indices: what the old check looked at
    assert shell_defects(glued)[1] == 2 or gap == 0.0
    with pytest.raises(PrintabilityError, match=message):
        check_part(_with_mesh(make_fixture(), glued))
