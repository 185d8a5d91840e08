"""LeRobot v3.0 export and import (and v2.1 beside it): real parquet, mp4 and JSON files in LeRobot's
v3.0 layout, no lerobot package."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from fmb.cli import main
from fmb_core.errors import ParameterError
from sim import lerobot_v3
from sim.lerobot import STATE_LAYOUT, export_lerobot, import_lerobot
from sim.store import EpisodeStore
from tests.sim.test_lerobot import smooth_images
from tests.sim.test_store import make_episode

LENGTHS = (12, 15, 9)
LOW_DIM = [k for k, _ in STATE_LAYOUT] + ["action", "reward", "progress"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot_v3")
    store = EpisodeStore.create(root / "store", {"task": "insertion", "backend": "mujoco", "fps": 10})
    for i, steps in enumerate(LENGTHS):
        data = make_episode(steps, seed=i, images=False)
        data["obs/rgb/wrist"] = smooth_images(steps, phase=i)
        store.append(data, {"seed": 100 + i, "task": "grasp" if i == 2 else "insertion", "success": i != 1})
    return store


@pytest.fixture(scope="module")
def exported(store, tmp_path_factory):
    return export_lerobot(store, tmp_path_factory.mktemp("v3") / "dataset", progress=False, version="v3.0")


def test_export_writes_the_v30_layout(exported):
    info = json.loads((exported / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["total_episodes"] == 3
    assert (info["total_frames"], info["total_tasks"], info["chunks_size"]) == (sum(LENGTHS), 2, 1000)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert "total_chunks" not in info and "total_videos" not in info and info["data_files_size_in_mb"] == 100
    assert info["features"]["action"]["fps"] == 10 and info["features"]["observation.images.wrist"]["dtype"] == "video"
    files = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file())
    assert files == [
        "data/chunk-000/file-000.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "videos/observation.images.wrist/chunk-000/file-000.mp4",
    ]
    episodes = pq.read_table(exported / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in episodes] == [0, 1, 2] and [e["length"] for e in episodes] == list(LENGTHS)
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == [(0, 12), (12, 27), (27, 36)]
    key = "videos/observation.images.wrist"
    assert [(e[f"{key}/from_timestamp"], e[f"{key}/to_timestamp"]) for e in episodes] == [
        (0.0, 1.2),
        (1.2, 2.7),
        (2.7, 3.6),
    ]
    assert episodes[2]["tasks"] == ["grasp"] and episodes[0]["stats/action/count"] == [12]
    assert len(episodes[0]["stats/observation.state/mean"]) == 34
    tasks = pq.read_table(exported / "meta/tasks.parquet")
    assert tasks.to_pydict() == {"task_index": [0, 1], "task": ["insertion", "grasp"]}
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]  # pandas: index "task"
    stats = json.loads((exported / "meta/stats.json").read_text())
    frames = pq.read_table(exported / "data/chunk-000/file-000.parquet")
    actions = np.array(frames.column("action").to_pylist())
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], actions.std(0), atol=1e-6)
    assert stats["action"]["count"] == [36] and frames.column("index").to_pylist() == list(range(36))


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_round_trip_is_bit_exact_on_low_dimensional_keys(store, tmp_path, version):
    out = export_lerobot(store, tmp_path / "ds", progress=False, version=version)
    back = import_lerobot(out, tmp_path / "back", progress=False)
    assert len(back) == 3 and back.meta["fps"] == 10
    for src, dst in zip(store.iter_episodes(), back.iter_episodes()):
        for key in LOW_DIM:
            assert np.array_equal(src.data[key], dst.data[key]), key
        assert dst.meta["seed"] == src.meta["seed"] and dst.meta["success"] == src.meta["success"]
        assert dst.meta["task"] == src.meta["task"]
        err = np.abs(src.data["obs/rgb/wrist"].astype(int) - dst.data["obs/rgb/wrist"].astype(int)).mean()
        assert err < 6, err  # lossy video, the right frames in the right order
    again = import_lerobot(out, tmp_path / "back", progress=False)  # resumes: nothing twice
    assert len(again) == 3


def test_v30_files_roll_over_and_are_read_back(store, tmp_path, monkeypatch):
    monkeypatch.setattr(lerobot_v3, "DATA_FILES_SIZE_IN_MB", 1e-3)  # every episode a file of its own
    monkeypatch.setattr(lerobot_v3, "VIDEO_FILES_SIZE_IN_MB", 1e-3)
    monkeypatch.setattr(lerobot_v3, "CHUNKS_SIZE", 2)
    out = export_lerobot(store, tmp_path / "ds", progress=False, version="v3.0")
    assert sorted(p.relative_to(out / "data").as_posix() for p in (out / "data").rglob("*.parquet")) == [
        "chunk-000/file-000.parquet",
        "chunk-000/file-001.parquet",
        "chunk-001/file-000.parquet",
    ]
    assert len(list((out / "videos").rglob("*.mp4"))) == 3
    back = import_lerobot(out, tmp_path / "back", progress=False)
    for src, dst in zip(store.iter_episodes(), back.iter_episodes()):
        assert np.array_equal(src.data["action"], dst.data["action"])
        assert np.abs(src.data["obs/rgb/wrist"].astype(int) - dst.data["obs/rgb/wrist"].astype(int)).mean() < 6


def test_cli_export_and_import_and_bad_version(store, tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["data", "export", str(store.root), "--out", str(out), "--format", "lerobot", "--version", "v3.0"]
    assert main([*args, "--quiet"]) == 0
    assert json.loads((out / "meta/info.json").read_text())["codebase_version"] == "v3.0"
    assert main(["data", "import-lerobot", str(out), "--out", str(tmp_path / "s"), "--quiet"]) == 0
    assert len(EpisodeStore.open(tmp_path / "s")) == 3
    assert main([*args[:-1], "v9", "--quiet"]) == 2
    assert "unknown --version 'v9'; known: v2.1, v3.0" in capsys.readouterr().err
    (out / "meta/episodes/chunk-000/file-000.parquet").unlink()
    with pytest.raises(ParameterError, match="meta/episodes holds no chunk"):
        import_lerobot(out, tmp_path / "s2", progress=False)


def test_import_a_dataset_written_by_lerobot_itself(tmp_path):
    """tests/sim/data/lerobot_v3_so100: written by lerobot 0.4.2 (README there), AV1 video, tasks as
    an unnamed pandas index; state and action come back bit-exact, the frames in order."""
    from pathlib import Path

    src = Path(__file__).parent / "data/lerobot_v3_so100"
    store = import_lerobot(src, tmp_path / "s", progress=False)
    expected = np.load(src / "expected.npz")
    episodes = list(store.iter_episodes())
    assert [e.meta["task"] for e in episodes] == ["task 0", "task 1"] and store.meta["fps"] == 15
    assert np.array_equal(np.concatenate([e.data["obs/state"] for e in episodes]), expected["state"])
    assert np.array_equal(np.concatenate([e.data["action"] for e in episodes]), expected["action"])
    for ep, e in enumerate(episodes):
        t = np.arange(len(e.data["action"]))[:, None, None]
        y, x = np.mgrid[0:32, 0:48]
        truth = np.stack(np.broadcast_arrays((x * 5 + t * 20) % 256, (y * 7) % 256, 40 * ep + 0 * x), -1)
        assert np.abs(e.data["obs/rgb/cam"].astype(int) - truth).mean() < 6
