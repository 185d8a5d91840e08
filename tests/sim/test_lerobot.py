"""LeRobot v2.1 export and import: real parquet, mp4 and JSON files, no lerobot package."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fmb_core.errors import ParameterError
from sim.lerobot import STATE_LAYOUT, STATE_NAMES, export_lerobot, import_lerobot
from sim.store import EpisodeStore
from tests.sim.test_store import make_episode

LENGTHS = (12, 15, 9)
LOW_DIM = [k for k, _ in STATE_LAYOUT] + ["action", "reward", "progress"]


def smooth_images(steps: int, phase: float) -> np.ndarray:
    """(T, 64, 64, 3) uint8 gradients that drift over time."""
    t, y, x = np.meshgrid(np.arange(steps), np.arange(64), np.arange(64), indexing="ij")
    r = 128 + 90 * np.sin(x / 9.0 + t / 4.0 + phase)
    g = 128 + 90 * np.cos(y / 11.0 - t / 6.0)
    b = 60 + 1.5 * (x + y)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot")
    store = EpisodeStore.create(root / "store", {"task": "insertion", "backend": "mujoco", "fps": 10})
    for i, steps in enumerate(LENGTHS):
        data = make_episode(steps, seed=i, images=False)
        data["obs/rgb/wrist"] = smooth_images(steps, phase=i)
        data["obs/depth/wrist"] = np.full((steps, 64, 64), 0.5, np.float32)
        store.append(data, {"seed": 100 + i, "task": "insertion", "success": i != 1})
    out = export_lerobot(store, root / "dataset", task_text="insert the peg into the board", progress=False)
    return store, out


def test_export_writes_lerobot_v21_layout(exported):
    store, out = exported
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["robot_type"] == "franka" and info["fps"] == 10
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(LENGTHS), 1)
    assert (info["total_videos"], info["total_chunks"], info["chunks_size"]) == (3, 1, 1000)
    assert info["splits"] == {"train": "0:3"}
    assert info["data_path"] == "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    assert info["video_path"] == "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    feats = info["features"]
    assert feats["observation.state"] == {"dtype": "float32", "shape": [34], "names": STATE_NAMES}
    assert feats["action"]["shape"] == [7] and feats["next.done"]["dtype"] == "bool"
    video = feats["observation.images.wrist"]
    assert video["dtype"] == "video" and video["shape"] == [64, 64, 3]
    assert video["info"]["video.codec"] in ("h264", "mpeg4") and video["info"]["video.pix_fmt"] == "yuv420p"
    assert not any("depth" in k or "points" in k for k in feats)

    episodes = [json.loads(line) for line in (out / "meta/episodes.jsonl").read_text().splitlines()]
    assert [e["length"] for e in episodes] == list(LENGTHS)
    assert episodes[0]["tasks"] == ["insert the peg into the board"]
    tasks = [json.loads(line) for line in (out / "meta/tasks.jsonl").read_text().splitlines()]
    assert tasks == [{"task_index": 0, "task": "insert the peg into the board"}]
    stats = [json.loads(line) for line in (out / "meta/episodes_stats.jsonl").read_text().splitlines()]
    s = stats[1]["stats"]
    assert len(s["observation.state"]["mean"]) == 34 and s["observation.state"]["count"] == [LENGTHS[1]]
    assert np.array(s["observation.images.wrist"]["mean"]).shape == (3, 1, 1)
    assert 0.0 <= np.min(s["observation.images.wrist"]["min"]) <= np.max(s["observation.images.wrist"]["max"]) <= 1
    assert s["frame_index"]["max"] == [LENGTHS[1] - 1]

    table = pq.read_table(out / "data/chunk-000/episode_000001.parquet")
    assert table.column_names[:2] == ["observation.state", "action"]
    assert table.column("index").to_pylist() == list(range(LENGTHS[0], LENGTHS[0] + LENGTHS[1]))
    assert np.allclose(table.column("timestamp").to_numpy(), np.arange(LENGTHS[1]) / 10)
    assert table.column("next.done").to_pylist()[-2:] == [False, True]
    assert not any(table.column("next.success").to_pylist())  # episode 1 failed
    assert (out / "videos/chunk-000/observation.images.wrist/episode_000002.mp4").stat().st_size > 0
    assert not list(out.parent.glob(".dataset.tmp-*"))


def test_round_trip_through_lerobot(exported, tmp_path):
    store, out = exported
    back = import_lerobot(out, tmp_path / "back", progress=False)
    assert back.episode_indices() == [0, 1, 2] and back.meta["fps"] == 10
    for i in range(3):
        src, dst = store.load(i), back.load(i)
        for key in LOW_DIM:
            assert dst.data[key].dtype == np.float32 and np.array_equal(dst.data[key], src.data[key]), key
        state = np.concatenate([src.data[k] for k, _ in STATE_LAYOUT], axis=1)
        assert np.array_equal(dst.data["obs/state"], state)
        err = np.abs(dst.data["obs/rgb/wrist"].astype(float) - src.data["obs/rgb/wrist"]).mean()
        assert dst.data["obs/rgb/wrist"].shape == (LENGTHS[i], 64, 64, 3) and err < 8, err
        assert "obs/depth/wrist" not in dst.data and "obs/points" not in dst.data
        assert dst.meta["seed"] == 100 + i and dst.meta["success"] == (i != 1)
        assert dst.meta["source"] == "lerobot" and dst.meta["task_text"] == "insert the peg into the board"


def test_export_refuses_to_replace_other_folders(exported, tmp_path):
    store, _ = exported
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/thesis.tex").write_text("%")
    with pytest.raises(ParameterError, match="not a LeRobot dataset"):
        export_lerobot(store, tmp_path / "mine", progress=False)
    empty = EpisodeStore.create(tmp_path / "empty", {"task": "insertion", "backend": "mujoco"})
    with pytest.raises(ParameterError, match="is empty"):
        export_lerobot(empty, tmp_path / "out", progress=False)


def write_foreign_dataset(root, lengths=(6, 4)):
    """A minimal v2.1 dataset from another robot: 5-D state, 3-D action, no images, fps 30."""
    (root / "meta").mkdir(parents=True)
    features = {
        "observation.state": {"dtype": "float32", "shape": [5], "names": {"motors": [f"m{i}" for i in range(5)]}},
        "action": {"dtype": "float32", "shape": [3], "names": ["x", "y", "gripper"]},
        **{
            k: {"dtype": "int64", "shape": [1], "names": None}
            for k in ("frame_index", "episode_index", "index", "task_index")
        },
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    }
    info = {
        "codebase_version": "v2.1",
        "robot_type": "so100",
        "fps": 30,
        "total_episodes": len(lengths),
        "total_frames": sum(lengths),
        "total_tasks": 1,
        "total_videos": 0,
        "total_chunks": 1,
        "chunks_size": 1000,
        "splits": {"train": f"0:{len(lengths)}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": None,
        "features": features,
    }
    (root / "meta/info.json").write_text(json.dumps(info))
    (root / "meta/tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "pick the cube"}) + "\n")
    (root / "meta/episodes.jsonl").write_text(
        "".join(
            json.dumps({"episode_index": i, "tasks": ["pick the cube"], "length": n}) + "\n"
            for i, n in enumerate(lengths)
        )
    )
    rng, start, states = np.random.default_rng(3), 0, []
    (root / "data/chunk-000").mkdir(parents=True)
    for i, n in enumerate(lengths):
        state, action = rng.normal(size=(n, 5)).astype(np.float32), rng.normal(size=(n, 3)).astype(np.float32)
        table = pa.table(
            {
                "observation.state": pa.array(state.tolist(), type=pa.list_(pa.float32())),
                "action": pa.array(action.tolist(), type=pa.list_(pa.float32())),
                "timestamp": pa.array(np.arange(n, dtype=np.float32) / 30),
                "frame_index": pa.array(np.arange(n)),
                "episode_index": pa.array(np.full(n, i)),
                "index": pa.array(np.arange(start, start + n)),
                "task_index": pa.array(np.zeros(n, np.int64)),
            }
        )
        pq.write_table(table, root / f"data/chunk-000/episode_{i:06d}.parquet")
        states.append((state, action))
        start += n
    return states


def test_import_foreign_low_dim_dataset(tmp_path):
    arrays = write_foreign_dataset(tmp_path / "foreign")
    store = import_lerobot(tmp_path / "foreign", tmp_path / "store", max_episodes=1, progress=False)
    assert len(store) == 1 and store.meta["robot_type"] == "so100" and store.meta["task"] == "pick the cube"
    store = import_lerobot(tmp_path / "foreign", tmp_path / "store", progress=False)  # resumes
    assert store.episode_indices() == [0, 1] and store.done_seeds() == {0, 1}
    for i, (state, action) in enumerate(arrays):
        ep = store.load(i)
        assert set(ep.data) == {"obs/state", "action"}
        assert np.array_equal(ep.data["obs/state"], state) and np.array_equal(ep.data["action"], action)
        assert ep.meta["task"] == "pick the cube" and ep.meta["success"] is None and ep.meta["source"] == "lerobot"
    assert store.meta["state_names"] == [f"m{i}" for i in range(5)]
    out = export_lerobot(store, tmp_path / "again", progress=False)  # a foreign store exports too
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.state"]["shape"] == [5] and info["fps"] == 30


def test_import_rejects_folders_that_are_not_datasets(tmp_path):
    with pytest.raises(ParameterError, match=r"not a LeRobot dataset: .*meta/info.json is missing"):
        import_lerobot(tmp_path / "nothing", tmp_path / "s1", progress=False)
    write_foreign_dataset(tmp_path / "old")
    info = json.loads((tmp_path / "old/meta/info.json").read_text())
    (tmp_path / "old/meta/info.json").write_text(json.dumps({**info, "codebase_version": "v1.6"}))
    with pytest.raises(ParameterError, match=r"info.json: codebase_version 'v1.6' is not supported"):
        import_lerobot(tmp_path / "old", tmp_path / "s2", progress=False)
    write_foreign_dataset(tmp_path / "holey")
    (tmp_path / "holey/data/chunk-000/episode_000001.parquet").unlink()
    with pytest.raises(ParameterError, match=r"data/chunk-000/episode_000001.parquet is missing"):
        import_lerobot(tmp_path / "holey", tmp_path / "s3", progress=False)


def test_import_reports_a_missing_video(exported, tmp_path):
    _, out = exported
    copy = shutil.copytree(out, tmp_path / "copy")
    (copy / "videos/chunk-000/observation.images.wrist/episode_000000.mp4").unlink()
    with pytest.raises(ParameterError, match=r"observation.images.wrist/episode_000000.mp4 is missing"):
        import_lerobot(copy, tmp_path / "s", progress=False)
