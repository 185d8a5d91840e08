"""Exported files: manifest, re-loadable STL/3MF with the right volume, determinism, atomicity."""

from __future__ import annotations

import json

import pytest
import trimesh

from cad.export import export_set, load_manifest, mesh_mm, write_3mf
from cad.object_set import sample_set, single_part
from cad.rebuild import parts_from_manifest
from fmb_core.errors import ParameterError


@pytest.mark.slow
def test_standard_set_contents(exported_set):
    out, manifest = exported_set
    kinds = [p["kind"] for p in manifest["parts"]]
    assert kinds.count("peg") == 54 and kinds.count("board") == 3 and kinds.count("fixture") == 1
    assert kinds.count("assembly_part") == 4 + 4 + 5 and kinds.count("assembly_board") == 3
    assert [a["name"] for a in manifest["assemblies"]] == ["bridge", "tower", "comb"]
    assert manifest["assemblies"][0]["order"] == [
        "bridge_base",
        "bridge_pillar_square",
        "bridge_pillar_round",
        "bridge_bridge",
    ]
    pegs = ["comb_peg_oval", "comb_peg_rectangle", "comb_peg_arch"]
    assert manifest["assemblies"][2]["requires"]["comb_lock"] == pegs
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for entry in manifest["parts"]:
        for key in ("stl", "3mf", "mjcf", "urdf", "collision_obj"):
            assert (out / entry["files"][key]).is_file(), (entry["name"], key)
        assert entry["mass_g"] > 0 and entry["volume_mm3"] > 0 and entry["collision_pieces"] >= 1
        if entry["kind"] == "peg":
            assert set(entry["splits"]) >= {"family_holdout", "size_holdout", "procedural"}
    star = next(e for e in manifest["parts"] if e["name"] == "peg_star_M_long")
    assert star["size_mm"] == pytest.approx([44.0, 42.1, 150.0], abs=1e-3)
    assert star["splits"]["family_holdout"] == "test" and star["splits"]["size_holdout"] == "train"


def test_stl_and_3mf_reload_to_the_same_volume(exported_set):
    out, manifest = exported_set
    for entry in manifest["parts"][::7] + [e for e in manifest["parts"] if e["kind"] == "board"]:
        stl = trimesh.load(out / entry["files"]["stl"], force="mesh")
        tmf = trimesh.load(out / entry["files"]["3mf"], force="mesh")
        for mesh in (stl, tmf):
            assert mesh.is_watertight, entry["name"]
            assert mesh.volume == pytest.approx(entry["volume_mm3"], rel=1e-5), entry["name"]
        assert stl.bounds.ravel() == pytest.approx(sum(entry["bbox_mm"], []), abs=1e-3)


def test_manifest_rebuilds_identical_parts(exported_set, standard_objects):
    _, manifest = exported_set
    rebuilt = parts_from_manifest(manifest)
    assert [p.name for p in rebuilt] == [p.name for p in standard_objects.parts]
    for a, b in zip(rebuilt, standard_objects.parts):
        assert a.params == b.params
        assert a.mesh().volume == pytest.approx(b.mesh().volume, rel=1e-12)


def test_same_seed_same_bytes(tmp_path):
    a = export_set(sample_set("star", 3, seed=11), tmp_path / "a", progress=False)
    b = export_set(sample_set("star", 3, seed=11), tmp_path / "b", progress=False)
    c = export_set(sample_set("star", 3, seed=12), tmp_path / "c", progress=False)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 10
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert a == b
    assert [p["params_si"] for p in a["parts"]] != [p["params_si"] for p in c["parts"]]


def test_3mf_is_deterministic(tmp_path):
    part = single_part("three_prong", "S", "short").parts[0]
    write_3mf(mesh_mm(part), tmp_path / "a.3mf")
    write_3mf(mesh_mm(part), tmp_path / "b.3mf")
    assert (tmp_path / "a.3mf").read_bytes() == (tmp_path / "b.3mf").read_bytes()


def test_sampled_members_fit_their_boards(tmp_path):
    objects = sample_set("all", 2, seed=3)
    pegs = [p for p in objects.parts if p.kind == "peg"]
    boards = [p for p in objects.parts if p.kind == "board"]
    assert len(pegs) == 18 and len(boards) == 2
    families = {objects.pegs[p.name].shape.name for p in pegs}
    assert len(families) == 9
    holes = sum(len(b.params["holes"]) for b in boards)
    assert holes == 18


def test_failure_keeps_the_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "objects"
    export_set(single_part("round", "M", "short"), out, progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    import cad.export as export_mod

    calls = {"n": 0}
    real = export_mod.write_part

    def failing(*args, **kwargs):  # fail on the second part, after files were written
        calls["n"] += 1
        if calls["n"] == 2:
            raise ParameterError("simulated failure half-way")
        return real(*args, **kwargs)

    monkeypatch.setattr(export_mod, "write_part", failing)
    with pytest.raises(ParameterError):
        export_set(single_part("star", "M", "short"), out, progress=False)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["objects"]  # no temporary folder left


def test_load_manifest_errors(tmp_path):
    with pytest.raises(ParameterError, match="no manifest.json"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ParameterError, match="not valid JSON"):
        load_manifest(tmp_path)


def test_a_sampled_peg_is_rebuilt_from_its_name_alone():
    from cad.object_set import sampled_member

    sampled = sample_set("all", 2, seed=5)
    assert len(sampled.pegs) == 18
    for name, spec in sampled.pegs.items():
        assert sampled_member(name) == spec, name
    assert sampled_member("peg_star_M_long") is None and sampled_member("peg_nonsense_s0_000") is None
