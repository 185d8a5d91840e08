"""EpisodeStore: round trips, lazy loading, validation, and resuming after a killed writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fmb_core.errors import FmbError, ParameterError
from sim.store import EpisodeStore

ROOT = Path(__file__).resolve().parents[2]
STORE_META = {"task": "insertion", "backend": "mujoco", "fps": 10, "features": {"cameras": ["wrist"]}}


def make_episode(steps: int, seed: int, images: bool = True) -> dict[str, np.ndarray]:
    """All the expected keys, random but reproducible."""
    rng = np.random.default_rng(seed)
    quat = rng.normal(size=(steps, 4))
    data = {
        "obs/tcp_pose": np.concatenate(
            [rng.uniform(-0.5, 0.5, (steps, 3)), quat / np.linalg.norm(quat, axis=1, keepdims=True)], axis=1
        ).astype(np.float32),
        "obs/tcp_vel": rng.normal(size=(steps, 6)).astype(np.float32),
        "obs/wrench": rng.normal(scale=5.0, size=(steps, 6)).astype(np.float32),
        "obs/q": rng.uniform(-2, 2, (steps, 7)).astype(np.float32),
        "obs/dq": rng.normal(size=(steps, 7)).astype(np.float32),
        "obs/gripper": rng.uniform(0, 0.08, (steps, 1)).astype(np.float32),
        "action": rng.normal(size=(steps, 7)).astype(np.float32),
        "reward": rng.uniform(size=steps).astype(np.float32),
        "progress": np.linspace(0, 1, steps, dtype=np.float32),
    }
    if images:
        data["obs/rgb/wrist"] = rng.integers(0, 256, (steps, 24, 32, 3), dtype=np.uint8)
        data["obs/depth/wrist"] = rng.uniform(0.1, 2.0, (steps, 24, 32)).astype(np.float32)
        data["obs/points"] = rng.normal(size=(steps, 50, 6)).astype(np.float32)
    return data


def make_meta(seed: int, success: bool = True) -> dict:
    return {"seed": seed, "task": "insertion", "success": success}


def test_round_trip_is_bit_exact(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", STORE_META)
    episodes = [make_episode(5 + i, seed=i) for i in range(2)]
    for i, data in enumerate(episodes):
        assert store.append(data, make_meta(seed=10 + i, success=bool(i))) == i
    again = EpisodeStore.open(tmp_path / "s")
    assert again.meta == STORE_META
    for i, data in enumerate(episodes):
        ep = again.load(i)
        assert set(ep.data) == set(data)
        for key, a in data.items():
            assert ep.data[key].dtype == a.dtype and np.array_equal(ep.data[key], a), key
        assert ep.meta == {**make_meta(10 + i, bool(i)), "episode_index": i, "num_steps": 5 + i}
    assert again.load_meta(1)["seed"] == 11
    assert again.total_steps() == 5 + 6


def test_load_reads_only_the_requested_keys(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", STORE_META)
    store.append(make_episode(4, seed=0), make_meta(0))
    ep = store.load(0, keys=["obs/q", "action"])
    assert set(ep.data) == {"obs/q", "action"} and ep.data["obs/q"].shape == (4, 7)
    assert [sorted(e.data) for e in store.iter_episodes(keys=["reward"])] == [["reward"]]
    with pytest.raises(ParameterError, match="no obs/nope; keys: .*obs/rgb/wrist"):
        store.load(0, keys=["obs/nope"])
    with pytest.raises(ParameterError, match=r"episode 3 is not in .* \(episodes: 0..0\)"):
        store.load(3)


def test_indices_are_contiguous_across_reopen(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", STORE_META)
    for seed in range(3):
        store.append(make_episode(3, seed, images=False), make_meta(seed))
    store = EpisodeStore.create(tmp_path / "s", STORE_META)  # exist_ok reopens
    assert store.append(make_episode(3, 7, images=False), make_meta(7)) == 3
    assert store.episode_indices() == [0, 1, 2, 3] and len(store) == 4
    assert sorted(tmp_path.joinpath("s/episodes").iterdir())[0].name == "episode_000000.npz"
    assert store.done_seeds() == {0, 1, 2, 7}
    assert store.total_steps() == 12


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(action=d["action"][:-1]), "one leading length"),
        (lambda d: d["obs/wrench"].__setitem__((1, 2), np.nan), "'obs/wrench' holds NaN or inf"),
        (lambda d: d["reward"].__setitem__(0, np.inf), "'reward' holds NaN or inf"),
        (lambda d: d.update({k: v[:0] for k, v in d.items()}), "T >= 1"),
        (lambda d: d.update(label=np.array(["a", "b", "c"])), "'label' must be numeric"),
        (lambda d: d.update(__meta__=np.zeros(3)), "reserved|not starting with '__'"),
    ],
)
def test_append_rejects_bad_data(tmp_path, change, message):
    store = EpisodeStore.create(tmp_path / "s", STORE_META)
    data = make_episode(3, seed=0, images=False)
    change(data)
    with pytest.raises(ParameterError, match=message):
        store.append(data, make_meta(0))
    assert len(store) == 0 and not any(tmp_path.joinpath("s/episodes").iterdir())


def test_append_rejects_bad_meta(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", STORE_META)
    data = make_episode(2, seed=0, images=False)
    with pytest.raises(ParameterError, match="needs 'seed'"):
        store.append(data, {"task": "insertion", "success": True})
    with pytest.raises(ParameterError, match="'seed' must be int, got True"):
        store.append(data, {"seed": True, "task": "insertion", "success": True})
    with pytest.raises(ParameterError, match="JSON-serialisable"):
        store.append(data, {**make_meta(0), "when": object()})
    assert store.append(data, {**make_meta(np.int64(4)), "gains": np.ones(2)}) == 0
    assert store.load_meta(0)["gains"] == [1.0, 1.0] and store.done_seeds() == {4}


def test_create_and_open_errors(tmp_path):
    EpisodeStore.create(tmp_path / "s", STORE_META)
    with pytest.raises(ParameterError, match="task='insertion', but task='reorient'"):
        EpisodeStore.create(tmp_path / "s", {**STORE_META, "task": "reorient"})
    with pytest.raises(ParameterError, match="backend='mujoco', but backend='pybullet'"):
        EpisodeStore.create(tmp_path / "s", {**STORE_META, "backend": "pybullet"})
    with pytest.raises(ParameterError, match="already exists"):
        EpisodeStore.create(tmp_path / "s", STORE_META, exist_ok=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("hi")
    with pytest.raises(ParameterError, match="not an episode store"):
        EpisodeStore.create(tmp_path / "other", STORE_META)
    with pytest.raises(FmbError, match="store.json is missing"):
        EpisodeStore.open(tmp_path / "missing")
    with pytest.raises(FmbError, match="store.json is missing"):
        EpisodeStore.open(tmp_path / "other")
    (tmp_path / "other/store.json").write_text(json.dumps({"schema": "something/9"}))
    with pytest.raises(FmbError, match="schema 'something/9', expected 'fmb-episodes/1'"):
        EpisodeStore.open(tmp_path / "other")


def test_stale_temp_files_are_ignored_and_cleaned(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", STORE_META)
    store.append(make_episode(2, 0, images=False), make_meta(0))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "s/episodes"
    stale = folder / f".episode_000001.npz.tmp-{dead.pid}-0badc0de"
    live = folder / f".episode_000001.npz.tmp-{os.getpid()}-00c0ffee"
    stale.write_bytes(b"half an episode")
    live.write_bytes(b"being written right now")
    assert store.episode_indices() == [0]
    EpisodeStore.open(tmp_path / "s")
    assert not stale.exists() and live.exists()  # a live writer's file is left alone


WRITER = """
import sys
import numpy as np
from sim.store import EpisodeStore

store = EpisodeStore.create(sys.argv[1], {"task": "insertion", "backend": "mujoco", "fps": 10})
done = store.done_seeds()
for seed in range(int(sys.argv[2])):
    if seed in done:
        continue
    rng = np.random.default_rng(seed)
    data = {"obs/rgb/wrist": rng.integers(0, 256, (30, 96, 96, 3), dtype=np.uint8),
            "action": rng.normal(size=(30, 7)).astype(np.float32)}
    store.append(data, {"seed": seed, "task": "insertion", "success": True})
"""


def run_writer(root: Path, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(count)], cwd=ROOT, env=env)


def test_resume_after_the_writer_is_killed(tmp_path):
    root = tmp_path / "s"
    proc = run_writer(root, count=10_000)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:  # two episodes committed and the third one being written
        assert proc.poll() is None, "writer exited early"
        if len(list(root.glob("episodes/episode_*.npz"))) >= 2 and list(root.glob("episodes/.episode_*.tmp-*")):
            break
        time.sleep(0.001)
    proc.kill()  # SIGKILL in the middle of compressing an episode
    proc.wait()  # reap it, so that its pid is dead
    assert len(list(root.glob("episodes/.episode_*.tmp-*"))) <= 1
    store = EpisodeStore.open(root)
    n = len(store)
    assert n >= 2 and store.episode_indices() == list(range(n))
    assert store.done_seeds() == set(range(n))
    for ep in store.iter_episodes():
        rng = np.random.default_rng(ep.meta["seed"])
        assert np.array_equal(ep.data["obs/rgb/wrist"], rng.integers(0, 256, (30, 96, 96, 3), dtype=np.uint8))
    assert [p.name for p in (root / "episodes").iterdir() if not p.name.startswith("episode_")] == []
    # a rerun skips the stored seeds and continues the indices
    assert run_writer(root, count=n + 2).wait(timeout=30) == 0
    assert store.episode_indices() == list(range(n + 2)) and store.done_seeds() == set(range(n + 2))
