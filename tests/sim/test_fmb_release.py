"""FMB's released .npy format -> episode stores: small files written to the documented structure
(the keys, dtypes and file names FMB's dataset builders read), imported, and checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fmb.cli import main
from sim.datasets.fmb_import import import_fmb
from sim.datasets.fmb_release import (
    GRIPPER_OPEN,
    FmbImportConfig,
    convert_actions,
    load_fmb_file,
    segments,
    synthetic_trajectory,
)
from sim.exceptions import DataFormatError
from sim.store import EpisodeStore

SIDE = 8  # image side [px] (FMB's are 256; tiny here)


def fmb_trajectory(primitives: list[str], seed: int = 0, side: int = SIDE, object_id=None) -> dict:
    """One trajectory dict in FMB's release format (`synthetic_trajectory`), tiny images."""
    return synthetic_trajectory(primitives, seed, side, object_id)


CHAIN = ["grasp"] * 4 + ["rotate"] * 3 + ["insert"] * 5
"""A vertical peg's primitives: grasp -> rotate -> insert."""


@pytest.fixture
def release(tmp_path):
    """A release folder: two single-object files (labels in the name) and one multi-object file."""
    src = tmp_path / "fmb"
    (src / "single_object_manipulation").mkdir(parents=True)
    (src / "multi_object_manipulation/board_2").mkdir(parents=True)
    np.save(src / "single_object_manipulation/3_M_L_2_vertical_n_0.npy", fmb_trajectory(CHAIN, 0))
    horizontal = ["grasp"] * 3 + ["place_on_fixture"] * 3 + ["regrasp"] * 3 + ["move_up"] * 2 + ["insert"] * 4
    np.save(src / "single_object_manipulation/3_M_L_2_horizontal_y_1.npy", fmb_trajectory(horizontal, 1))
    multi = fmb_trajectory(["grasp"] * 3 + ["insert"] * 3 + ["grasp"] * 4, 2, object_id=[1] * 6 + [4] * 4)
    np.save(src / "multi_object_manipulation/board_2/0_1_run.npy", multi)
    return src


def test_import_splits_by_primitive_and_converts_units(release, tmp_path):
    out = tmp_path / "stores"
    summary = import_fmb(release, out, FmbImportConfig(depth=True), progress=False)
    counts = {p: s["episodes"] for p, s in summary["stores"].items()}
    assert counts == {"grasp": 4, "insert": 3, "place_on_fixture": 1, "regrasp": 1, "rotate": 1}
    assert summary["segments_left_out"] == {"move_up": 1}
    insert = EpisodeStore.open(out / "insert")
    assert insert.meta["task"] == "insert" and insert.meta["fps"] == 10 and insert.meta["source"] == "fmb release"

    raw = load_fmb_file(release / "single_object_manipulation/3_M_L_2_vertical_n_0.npy")
    ep = next(e for e in insert.iter_episodes() if e.meta["fmb_file"].endswith("vertical_n_0.npy"))
    a, b = ep.meta["fmb_steps"]
    assert (a, b) == (7, 12) and ep.meta["num_steps"] == 5
    # object labels: FMB shape 3 = oval, size M, length L = long, colour 2 = red; the rest from the name
    assert ep.meta["family"] == "oval" and ep.meta["peg"] == "peg_oval_M_long" and ep.meta["colour"] == "red"
    assert ep.meta["orientation"] == "vertical" and ep.meta["distractors"] is False and ep.meta["success"] is None
    d = ep.data
    np.testing.assert_allclose(d["obs/tcp_pose"], raw["obs/tcp_pose"][a:b], atol=1e-6)  # base frame, xyzw kept
    np.testing.assert_allclose(
        d["obs/wrench"], np.concatenate([raw["obs/tcp_force"], raw["obs/tcp_torque"]], 1)[a:b], atol=1e-5
    )
    np.testing.assert_allclose(d["obs/gripper"][:, 0], GRIPPER_OPEN * (1 - raw["obs/gripper_pose"][a:b]), atol=1e-6)
    assert d["obs/rgb/side_1"].dtype == np.uint8
    np.testing.assert_array_equal(d["obs/rgb/wrist_2"], raw["obs/wrist_2"][a:b, ..., ::-1])  # BGR -> RGB
    np.testing.assert_allclose(d["obs/depth/side_2"], raw["obs/side_2_depth"][a:b] * 1e-3, rtol=1e-6)  # mm -> m
    assert d["obs/jacobian"].shape == (5, 6, 7)
    # actions: normalised by 0.06 m / 0.25 rad; euler xyz -> rotation vector, base frame; gripper kept
    act = raw["actions"][a:b]
    np.testing.assert_allclose(d["action"][:, :3], act[:, :3] * 0.06, atol=1e-7)
    rot = Rotation.from_rotvec(d["action"][:, 3:6]).as_matrix()
    np.testing.assert_allclose(rot, Rotation.from_euler("xyz", act[:, 3:6] * 0.25).as_matrix(), atol=1e-6)
    np.testing.assert_array_equal(d["action"][:, 6], act[:, 6])

    multi = [e.meta for e in EpisodeStore.open(out / "grasp").iter_episodes() if "board" in e.meta]
    assert sorted((m["fmb_object_id"], m["colour"], m["num_steps"]) for m in multi) == [(1, "green", 3), (4, "red", 4)]
    assert all(m["family"].startswith("fmb_board_2_object_") for m in multi)


def test_rerun_resumes_and_imports_nothing_twice(release, tmp_path):
    config = FmbImportConfig(cameras=("wrist_1",))
    first = import_fmb(release, tmp_path / "s", config, progress=False)
    again = import_fmb(release, tmp_path / "s", config, progress=False)
    assert again["files_skipped_done"] == 3 and all(s["new"] == 0 for s in again["stores"].values())
    counts = {p: s["episodes"] for p, s in first["stores"].items()}
    assert {p: s["episodes"] for p, s in again["stores"].items()} == counts


def test_malformed_file_names_file_and_key_and_keeps_earlier_episodes(release, tmp_path):
    bad = fmb_trajectory(["insert"] * 3, 5)
    del bad["obs/tcp_force"]
    path = release / "single_object_manipulation/9_S_S_8_vertical_n_9.npy"  # sorts last
    np.save(path, bad)
    with pytest.raises(DataFormatError, match=r"9_S_S_8_vertical_n_9\.npy: missing key 'obs/tcp_force'"):
        import_fmb(release, tmp_path / "s", FmbImportConfig(cameras=()), progress=False)
    assert len(EpisodeStore.open(tmp_path / "s/insert")) == 3  # the files before it stay imported
    summary = import_fmb(release, tmp_path / "s", FmbImportConfig(cameras=(), skip_bad=True), progress=False)
    assert len(summary["bad_files"]) == 1 and summary["files_skipped_done"] == 3

    np.save(path, {**bad, "obs/tcp_force": np.zeros((2, 3))})
    with pytest.raises(DataFormatError, match=r"'obs/tcp_force' has shape \(2, 3\), expected \(3, 3\)"):
        import_fmb(path, tmp_path / "t", FmbImportConfig(cameras=()), progress=False)
    np.save(path, np.zeros(3))
    with pytest.raises(DataFormatError, match="expected a pickled dict"):
        load_fmb_file(path)


def test_cli_exit_code_and_unknown_keys(release, tmp_path, capsys):
    raw = fmb_trajectory(["grasp"] * 3, 7)
    raw["last_actions"] = np.zeros((3, 7))  # a key FMB's dataloader lists; not imported, reported
    del raw["actions"]
    raw["action"] = fmb_trajectory(["grasp"] * 3, 7)["actions"]  # the docs' spelling is accepted too
    del raw["object_info"]  # the labels then come from the file name
    np.save(release / "1_L_S_5_horizontal_n_3.npy", raw)
    assert main(["data", "import-fmb", str(release), "--out", str(tmp_path / "o"), "--cameras", "none", "--quiet"]) == 0
    assert '"last_actions": 1' in capsys.readouterr().out
    grasps = EpisodeStore.open(tmp_path / "o/grasp").iter_episodes()
    labels = [e.meta for e in grasps if e.meta["family"] == "rectangle"]
    assert labels[0]["size"] == "L" and labels[0]["length"] == "short" and labels[0]["colour"] == "green"
    del raw["obs/q"]
    np.save(release / "1_L_S_5_horizontal_n_3.npy", raw)
    code = main(["data", "import-fmb", str(release), "--out", str(tmp_path / "p"), "--quiet", "--cameras", "none"])
    assert code == 2 and "missing key 'obs/q'" in capsys.readouterr().err
    assert main(["data", "import-fmb", str(release), "--out", str(tmp_path / "q"), "--primitives", "fly"]) == 2
    assert "unknown primitive 'fly'" in capsys.readouterr().err


def test_pickled_code_is_refused(tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))  # os.system pickles as posix.system

    path = tmp_path / "evil.npy"
    np.save(path, np.array({"x": Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError, match=r"refusing to load posix\.system \(only numpy arrays"):
        load_fmb_file(path)
    assert not (Path.cwd() / "pwned").exists()
    assert pickle  # the module is what np.save uses


def test_segments_and_action_units():
    segs = segments(["grasp", "grasp", "rotate", "insert", "insert"], [1, 1, 1, 1, 2])
    assert [(s.start, s.stop, s.primitive, s.object_id) for s in segs] == [
        (0, 2, "grasp", 1),
        (2, 3, "rotate", 1),
        (3, 4, "insert", 1),
        (4, 5, "insert", 2),
    ]
    a = np.array([[1.0, -0.5, 0, 0, 0, 1.0, 1]])
    np.testing.assert_allclose(convert_actions(a)[0], [0.06, -0.03, 0, 0, 0, 0.25, 1], atol=1e-7)
    np.testing.assert_allclose(convert_actions(a * 0.01, "si")[0, :3], [0.01, -0.005, 0], atol=1e-9)


@pytest.mark.slow
@pytest.mark.train
def test_fmb_train_takes_the_imported_store(release, tmp_path):
    from policies.train import train
    from tests.policies.conftest import tiny, tiny_training

    import_fmb(release, tmp_path / "s", FmbImportConfig(cameras=()), progress=False)
    summary = train(
        [tmp_path / "s/insert"], tmp_path / "run", tiny(), tiny_training(steps=2), progress=False, log=lambda m: None
    )
    assert summary["steps"] == 2


def test_data_info_and_contact_sheet(release, tmp_path, capsys):
    import json

    import_fmb(release, tmp_path / "s", FmbImportConfig(cameras=("side_1", "wrist_1")), progress=False)
    sheet = tmp_path / "sheet.png"
    assert main(["data", "info", str(tmp_path / "s/grasp"), "--sheet", str(sheet)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 4 and info["skills"] == {"grasp": 4} and info["success"] == {"unknown": 4}
    assert info["objects"] == {"peg_oval_M_long": 2, "fmb_board_2_object_1": 1, "fmb_board_2_object_4": 1}
    assert info["cameras"] == ["side_1", "wrist_1"] and info["keys"]["obs/rgb/side_1"] == {
        "shape": [SIDE, SIDE, 3],
        "dtype": "uint8",
    }
    assert info["keys"]["action"] == {"shape": [7], "dtype": "float32"} and info["length_steps"]["max"] == 4
    assert sheet.stat().st_size > 2000 and sheet.read_bytes()[:4] == b"\x89PNG"


def test_bench_import_times_an_import_of_synthetic_release_files(capsys):
    import json

    assert main(["bench", "import", "--steps", "30", "--files", "2", "--image-size", "32", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 30 and result["files"] == 2 and result["seconds"]["median"] > 0
    assert 0 < result["cpu_seconds"]["median"] < 10 * result["seconds"]["median"]
    assert result["store_mb"] > 30 * 4 * 32 * 32 * 3 / 1e6 * 0.5  # four cameras' frames are in the stores
    assert main(["bench", "import", "--steps", "1", "--files", "2", "--json"]) == 2
    assert "steps=1 is out of range" in capsys.readouterr().err
