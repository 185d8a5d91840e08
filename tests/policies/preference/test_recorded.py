"""`fmb prefs from-episodes`: unlabelled states from recorded episodes, ranked by a person and
trained on, as a lab without a simulator of its scene would (the episodes here are simulated
demonstrations, read only as a store; nothing is rolled out)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmb.cli import main
from policies.preference.data import PreferenceSet
from policies.preference.label import label_terminal
from policies.preference.recorded import RecordedStatesConfig, state_points
from policies.preference.train import RewardTrainConfig, train_reward


def test_states_are_taken_every_stride_steps_interleaved_over_episodes():
    config = RecordedStatesConfig(states=5, stride=3)
    assert state_points([7, 3, 10], config) == [(0, 2), (1, 2), (2, 2), (0, 5), (2, 5)]
    assert state_points([2, 1], config) == []  # no episode reaches the first state's step
    with pytest.raises(Exception, match="candidates=1 is out of range"):
        RecordedStatesConfig(candidates=1)


def test_recorded_states_are_labelled_by_hand_and_train_a_reward(state_store, tiny_run, tiny_policy, tmp_path, capsys):
    out = tmp_path / "prefs"
    argv = ["prefs", "from-episodes", str(state_store.root), "--policy", str(tiny_run), "--out", str(out)]
    assert main([*argv, "--states", "4", "--candidates", "3", "--stride", "5", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["states"] == 4 and summary["episodes"] == 3 and "fmb prefs label" in summary["next"]
    pset = PreferenceSet.open(out)
    assert pset.index["source"] == "recorded" and not any(pset.label_counts().values())
    first = pset.load_state(0)
    to = tiny_policy.config.obs_horizon
    assert first["candidates"].shape == (3, tiny_policy.config.pred_horizon, 7) and first["paths"] is None
    assert len(first["history"]) == to and pset.states[0]["step"] == 4 and pset.states[1]["episode_index"] == 1
    # the history is the episode's own observations at steps 3 and 4
    episode = state_store.load(pset.states[0]["episode_index"]).data
    assert np.allclose(first["history"][-1]["tcp_pose"], episode["obs/tcp_pose"][4])
    assert np.allclose(first["history"][0]["tcp_pose"], episode["obs/tcp_pose"][5 - to])
    assert not np.allclose(first["candidates"][0], first["candidates"][1])  # K different proposals
    # A person ranks them (the terminal labeller, answers scripted), and a reward trains on it.
    answers = iter(["2 0 1", "0=1 2", "1 2 0", "0 2=1"])
    assert label_terminal(pset, ask=lambda prompt: next(answers), say=lambda line: None) == 4
    pset = PreferenceSet.open(out)
    assert {s["source"] for s in pset.states} == {"human"} and len(pset.pairs()) >= 9
    reward = train_reward(out, tiny_policy, tmp_path / "reward", RewardTrainConfig(model="explicit", steps=2))
    assert reward["data"]["labels"]["first"] + reward["data"]["labels"]["second"] >= 9
    # Bad input: an existing folder is kept, a stride no episode reaches is named.
    assert main([*argv, "--quiet"]) == 2
    assert "already holds a preference set" in capsys.readouterr().err
    assert PreferenceSet.open(out).label_counts()["first"] + PreferenceSet.open(out).label_counts()["second"] >= 9
    assert main([*argv[:-1], str(tmp_path / "other"), "--stride", "100000", "--quiet"]) == 2
    assert "no episode has 100000 steps" in capsys.readouterr().err
