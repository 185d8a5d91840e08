"""Automatic preference collection with a tiny policy on real MuJoCo rollouts."""

import dataclasses

import numpy as np
import pytest

from policies.experiments.evaluate import PolicyRunSpec
from policies.preference.collect import CollectConfig, collect_preferences, label_pairs
from policies.preference.data import PreferenceSet


@pytest.mark.slow
def test_collect_two_states(tiny_run, tmp_path):
    spec = PolicyRunSpec(str(tiny_run), "insert", families=("rectangle",), device="cpu")
    config = CollectConfig(states=2, candidates=2, continue_steps=3, decision_stride=1, tie_tolerance=1e-4)
    summary = collect_preferences(spec, config, tmp_path / "prefs", progress=False)
    assert summary["states"] == 2
    pset = PreferenceSet.open(tmp_path / "prefs")
    assert pset.task == "insert" and pset.index["collect"]["candidates"] == 2
    horizon = 4 + 3  # the tiny policy's action horizon, then the reference
    for i, entry in enumerate(pset.states):
        state = pset.load_state(i)
        assert state["candidates"].shape == (2, 8, 7) and len(state["history"]) in (1, 2)
        assert state["paths"].shape == (2, horizon + 1, 3)
        assert entry["pairs"] == label_pairs(entry["outcomes"], 1e-4)
        # The rollouts start at the same state and differ only through their candidate.
        np.testing.assert_array_equal(state["paths"][0, 0], state["paths"][1, 0])
        assert not np.allclose(state["paths"][0, 1:3], state["paths"][1, 1:3])
        assert "goal_pose" not in state["history"][-1]  # this tiny policy is not goal-conditioned
    assert (
        pset.states[0]["step"] < pset.states[1]["step"]
        or pset.states[0]["episode_seed"] < pset.states[1]["episode_seed"]
    )


def test_collect_with_perceived_goals(tiny_run, tmp_path):
    pytest.importorskip("open3d", reason="perception needs open3d")
    from sim.perceived_goals import PerceivedGoalConfig

    small = PerceivedGoalConfig(image_size=160, points=15_000)
    spec = PolicyRunSpec(str(tiny_run), "insert", families=("rectangle",), device="cpu", goals="perceived")
    spec = dataclasses.replace(spec, perception=small)
    config = CollectConfig(states=1, candidates=2, continue_steps=2, decision_stride=1)
    summary = collect_preferences(spec, config, tmp_path / "prefs", progress=False)
    assert summary["states"] == 1 and summary["goals"] == "perceived" and summary["perception_failures"] == []
    assert PreferenceSet.open(tmp_path / "prefs").index["collect"]["goals"] == "perceived"


@pytest.mark.slow
def test_collection_on_two_workers_stores_what_one_stores(tiny_run, tmp_path):
    """Episodes on two worker processes come back in any order; the folder holds the same states
    in the same order as a run in this process (each episode's seed decides its states)."""
    from sim.parallel import Executor

    spec = PolicyRunSpec(str(tiny_run), "insert", families=("rectangle",), device="cpu")
    config = CollectConfig(states=3, candidates=2, continue_steps=2, decision_stride=1, states_per_episode=1)
    one = collect_preferences(spec, config, tmp_path / "one", progress=False)
    two = collect_preferences(spec, config, tmp_path / "two", progress=False, executor=Executor("local", 2))
    assert one["states"] == two["states"] == 3 and one["episodes"] == two["episodes"] == 3
    assert two["executor"]["workers"] == 2
    a, b = PreferenceSet.open(tmp_path / "one"), PreferenceSet.open(tmp_path / "two")
    assert [s["episode_seed"] for s in a.states] == [s["episode_seed"] for s in b.states] == [200000, 200001, 200002]
    for i in range(3):
        assert a.states[i]["pairs"] == b.states[i]["pairs"] and a.states[i]["outcomes"] == b.states[i]["outcomes"]
        np.testing.assert_array_equal(a.load_state(i)["candidates"], b.load_state(i)["candidates"])
