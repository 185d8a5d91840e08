"""`fmb cad ...` end to end, and every bad input: one-line error, exit code 2, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fmb.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmb", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_subcommands_and_units():
    out = run_cli("--help").stdout
    assert "cad" in out and "bench" in out and "quickstart" in out
    cad_help = run_cli("cad", "set", "--help").stdout
    assert "[mm]" in cad_help and "--formats" in cad_help


def test_part_end_to_end(tmp_path):
    out = tmp_path / "part"
    assert (
        main(
            [
                "cad",
                "part",
                "--shape",
                "3-prong",
                "--size",
                "L",
                "--length",
                "short",
                "--clearance",
                "0.3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    names = [p["name"] for p in manifest["parts"]]
    assert names == ["peg_three_prong_L_short", "board_three_prong_L"]
    assert manifest["clearance_mm"] == pytest.approx(0.3)
    assert (out / "stl" / "peg_three_prong_L_short.stl").is_file()
    assert (out / "3mf" / "board_three_prong_L.3mf").is_file()


def test_sample_end_to_end_is_deterministic(tmp_path):
    for name in ("a", "b"):
        assert (
            main(
                [
                    "cad",
                    "sample",
                    "--family",
                    "star",
                    "--count",
                    "2",
                    "--seed",
                    "5",
                    "--out",
                    str(tmp_path / name),
                    "--quiet",
                ]
            )
            == 0
        )
    a = (tmp_path / "a" / "manifest.json").read_bytes()
    assert a == (tmp_path / "b" / "manifest.json").read_bytes()
    assert [p["name"] for p in json.loads(a)["parts"]] == ["peg_star_s5_000", "peg_star_s5_001", "board_s5_00"]


def test_rerun_replaces_an_earlier_set(tmp_path):
    out = tmp_path / "o"
    assert main(["cad", "part", "--shape", "round", "--out", str(out), "--quiet"]) == 0
    assert main(["cad", "part", "--shape", "oval", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in (out / "stl").iterdir()) == ["board_oval_M.stl", "peg_oval_M_long.stl"]


def _assert_clean_failure(proc, tmp_path, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fmb: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["cad", "part", "--shape", "pentagon"], ["unknown shape 'pentagon'", "star", "three_prong"]),
        (["cad", "part", "--shape", "star", "--size", "XL"], ["unknown --size 'XL'", "S, M, L"]),
        (["cad", "part", "--shape", "star", "--length", "medium"], ["unknown --length 'medium'", "short, long"]),
        (["cad", "part", "--shape", "star", "--clearance", "5"], ["--clearance=5 mm", "[0, 3] mm"]),
        (["cad", "part", "--shape", "star", "--clearance", "-0.1"], ["--clearance=-0.1 mm"]),
        (["cad", "part", "--shape", "star", "--formats", "obj"], ["unknown format 'obj'", "stl, 3mf, step"]),
        (["cad", "part", "--shape", "star", "--infill", "2"], ["infill=2", "[0, 1]"]),
        (["cad", "sample", "--family", "blob"], ["unknown shape 'blob'"]),
        (["cad", "sample", "--family", "star", "--count", "0"], ["count=0", "[1, 1000]"]),
        (["cad", "set", "--clearance", "2.6"], ["board_L", "wall between", "min_wall is 1.2 mm"]),
        (["cad", "set", "--clearance", "3"], ["board_L", "overlap"]),
    ],
)
@pytest.mark.slow
def test_bad_input(tmp_path, args, fragments):
    proc = run_cli(*args, "--out", str(tmp_path / "out"), "--quiet")
    _assert_clean_failure(proc, tmp_path, *fragments)
    assert not (tmp_path / "out").exists()


def test_out_is_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    proc = run_cli("cad", "part", "--shape", "star", "--out", str(target), "--quiet")
    _assert_clean_failure(proc, tmp_path, "is a file")
    assert target.read_text() == "keep me"


def test_out_is_a_foreign_folder(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    proc = run_cli("cad", "part", "--shape", "star", "--out", str(target), "--quiet")
    _assert_clean_failure(proc, tmp_path, "not empty", "--force")
    assert (target / "notes.txt").read_text() == "keep me"


def test_no_write_permission(tmp_path):
    if os.geteuid() == 0:
        target = "/sys/fmb_objects"  # sysfs refuses new folders even to root
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        target = str(locked / "objects")
    proc = run_cli("cad", "part", "--shape", "star", "--out", target, "--quiet")
    _assert_clean_failure(proc, tmp_path, "cannot write there")


def test_existing_set_survives_a_failed_rerun(tmp_path):
    out = tmp_path / "o"
    assert main(["cad", "part", "--shape", "round", "--out", str(out), "--quiet"]) == 0
    before = (out / "manifest.json").read_bytes()
    proc = run_cli("cad", "part", "--shape", "round", "--clearance", "9", "--out", str(out), "--quiet")
    assert proc.returncode == 2
    assert (out / "manifest.json").read_bytes() == before


@pytest.mark.slow
def test_preview_of_a_written_folder(tmp_path):
    out = tmp_path / "o"
    assert (
        main(["cad", "sample", "--family", "three_prong", "--count", "2", "--seed", "1", "--out", str(out), "--quiet"])
        == 0
    )
    assert main(["cad", "preview", str(out)]) == 0
    png = out / "preview.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = run_cli("cad", "preview", str(tmp_path))
    _assert_clean_failure(proc, tmp_path, "no manifest.json")


@pytest.mark.slow
def test_bench_cad_json():
    proc = run_cli("bench", "cad", "--repeats", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["parts"] == 74 and result["pegs"] == 54 and result["boards"] == 3
    assert result["set_seconds_median"] > 0 and result["part_seconds_median"] > 0
    assert result["collision_pieces"] > 74


@pytest.mark.slow
def test_quickstart_writes_the_set_and_preview(tmp_path):
    proc = run_cli("quickstart", "--out", str(tmp_path / "qs"), "--objects-only", "--quiet")
    assert proc.returncode == 0, proc.stderr
    objects = tmp_path / "qs" / "objects"
    assert (objects / "preview.png").is_file()
    assert len(json.loads((objects / "manifest.json").read_text())["parts"]) == 74
    assert str(objects / "preview.png") in proc.stdout
    # Running it again replaces the earlier run.
    assert run_cli("quickstart", "--out", str(tmp_path / "qs"), "--objects-only", "--quiet").returncode == 0
