"""`fmb sim ...` end to end: collection (resumable, also after a kill), expert evaluation, video."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sim.store import EpisodeStore


def fmb(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmb", *args], capture_output=True, text=True, timeout=600, **kwargs)


COMMON = ("--families", "round,rectangle", "--sizes", "M", "--quiet")


@pytest.mark.slow
def test_collect_records_every_key_and_resumes(tmp_path):
    out = tmp_path / "demos"
    proc = fmb(
        "sim", "collect", "--episodes", "2", "--out", str(out), "--cameras", "wrist", "--image-size", "32", *COMMON
    )
    assert proc.returncode == 0, proc.stderr
    store = EpisodeStore.open(out)
    assert len(store) == 2 and store.done_seeds() == {0, 1}
    ep = store.load(0)
    steps = ep.meta["num_steps"]
    assert ep.data["obs/rgb/wrist"].shape == (steps, 32, 32, 3)
    assert ep.data["action"].shape == (steps, 7) and ep.data["obs/tcp_pose"].shape == (steps, 7)
    assert ep.meta["success"] is True and ep.meta["family"] in ("round", "rectangle")
    assert ep.data["progress"][-1] == 1.0 and ep.data["reward"][-1] == 1.0
    # A rerun with more episodes only adds the missing seeds.
    proc = fmb(
        "sim", "collect", "--episodes", "3", "--out", str(out), "--cameras", "wrist", "--image-size", "32", *COMMON
    )
    summary = json.loads(proc.stdout)
    assert summary["skipped_existing"] == 2 and summary["new"] == 1
    store = EpisodeStore.open(out)
    assert store.done_seeds() == {0, 1, 2}
    stats = json.loads(fmb("sim", "stats", str(out)).stdout)
    assert stats["episodes"] == 3 and stats["successes"] == 3 and stats["steps"] == store.total_steps()
    assert stats["length_max"] == max(store.load_meta(i)["num_steps"] for i in store.episode_indices())
    assert 0 <= stats["contact_episodes"] <= 3 and stats["contact_steps"] >= stats["contact_episodes"]


def test_dart_collection_records_its_noise_scale(tmp_path):
    out = tmp_path / "dart"
    proc = fmb("sim", "collect", "--episodes", "1", "--dart", "1", "--out", str(out), *COMMON)
    assert proc.returncode == 0, proc.stderr
    ep = EpisodeStore.open(out).load(0)
    assert ep.meta["dart"] == 1.0 and ep.meta["success"] is True


@pytest.mark.slow
def test_collection_through_the_sensor_model_records_it(tmp_path):
    args = ("--episodes", "1", "--cameras", "wrist", "--image-size", "32", *COMMON)
    for sensor in ("exact", "default"):
        proc = fmb("sim", "collect", "--out", str(tmp_path / sensor), "--sensor", sensor, *args)
        assert proc.returncode == 0, proc.stderr
    exact, noisy = (EpisodeStore.open(tmp_path / s) for s in ("exact", "default"))
    assert (exact.meta["sensor"], noisy.meta["sensor"]) == ("exact", "default")
    a, b = exact.load(0).data["obs/depth/wrist"][0], noisy.load(0).data["obs/depth/wrist"][0]
    assert (b == 0).sum() > (a == 0).sum()  # missing returns at edges and grazing angles
    assert not np.array_equal(a[b > 0], b[b > 0])  # noisy depth where it returns
    bad = fmb("sim", "collect", "--out", str(tmp_path / "bad"), "--sensor", "kinect", *args)
    assert bad.returncode != 0 and "unknown sensor 'kinect'; known: default, exact" in bad.stderr


@pytest.mark.slow
def test_collection_killed_midway_resumes(tmp_path):
    out = tmp_path / "demos"
    cmd = [sys.executable, "-m", "fmb", "sim", "collect", "--episodes", "8", "--out", str(out), *COMMON]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    episodes = out / "episodes"
    deadline = time.time() + 120
    while time.time() < deadline:
        if episodes.is_dir() and len(list(episodes.glob("episode_*.npz"))) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = EpisodeStore.open(out)
    assert 2 <= len(partial) < 8
    for i in partial.episode_indices():
        partial.load(i)  # every committed episode is whole
    done = fmb("sim", "collect", "--episodes", "8", "--out", str(out), *COMMON)
    assert done.returncode == 0, done.stderr
    store = EpisodeStore.open(out)
    assert len(store) == 8 and store.done_seeds() == set(range(8))


@pytest.mark.slow
def test_expert_eval_json_with_intervals():
    proc = fmb("sim", "expert-eval", "--episodes", "3", "--json", *COMMON)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    overall = result["overall"]
    assert overall["episodes"] == 3 and overall["successes"] == 3
    low, high = overall["ci95"]
    assert 0.0 < low < 1.0 and high == 1.0
    assert set(result["per_family"]) <= {"round", "rectangle"}
    rows = result["episodes"]  # one row per seed, to replay a failure
    assert [r["seed"] for r in rows] == sorted(r["seed"] for r in rows) and len(rows) == 3
    assert all(r["success"] and r["family"] in result["per_family"] and r["steps"] > 0 for r in rows)


@pytest.mark.slow
def test_play_writes_a_video(tmp_path):
    video = tmp_path / "ep.mp4"
    proc = fmb("sim", "play", "--seed", "1", "--video", str(video), "--image-size", "64", *COMMON)
    assert proc.returncode == 0, proc.stderr
    import av

    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) >= 3 and frames[0].shape == (64, 128, 3)
    assert np.std(frames[0]) > 5  # not blank


def _assert_clean_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("fmb: error: "), proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.slow
def test_bad_input(tmp_path):
    _assert_clean_error(
        fmb("sim", "expert-eval", "--task", "juggle", "--episodes", "1"), "unknown task 'juggle'", "insert"
    )
    _assert_clean_error(fmb("sim", "expert-eval", "--backend", "gazebo", "--episodes", "1"), "unknown backend 'gazebo'")
    _assert_clean_error(fmb("sim", "expert-eval", "--families", "blob", "--episodes", "1"), "unknown shape 'blob'")
    _assert_clean_error(
        fmb("sim", "collect", "--episodes", "1", "--out", str(tmp_path / "x"), "--cameras", "top"),
        "unknown camera 'top'",
    )
    _assert_clean_error(fmb("sim", "play", "--video", str(tmp_path / "x.avi")), ".mp4")
    _assert_clean_error(fmb("sim", "expert-eval", "--episodes", "0"), "--episodes=0")
    _assert_clean_error(fmb("sim", "expert-eval", "--episodes", "1", "--dart", "-1"), "--dart")
    _assert_clean_error(fmb("sim", "stats", str(tmp_path / "none")), "no episode store")


def test_help_lists_every_task():
    from sim.cli import TASK_NAMES
    from sim.tasks import TASKS

    assert sorted(TASK_NAMES) == sorted(TASKS)
    assert "vertical_chain" in fmb("sim", "collect", "--help").stdout
