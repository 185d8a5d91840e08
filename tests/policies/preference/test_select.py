"""Selection at run time: never a candidate outside the safety limits, a logged fallback when
none is safe, and `fmb eval --select` on a real episode."""

import json
import logging

import numpy as np
import pytest
import torch

from fmb.cli import main
from fmb_core.errors import ParameterError
from policies.preference.checkpoint import RewardModel, build_net
from policies.preference.exceptions import RewardModelError
from policies.preference.select import CandidateFilter, CandidateSelector, make_selector
from policies.runtime.runner import PolicyRunner, RunnerConfig
from sim.env import make_env
from sim.limits import DEFAULT_ACTION_LIMITS, DEFAULT_WORKSPACE
from sim.objects import ObjectPool

pytestmark = pytest.mark.train


def _greedy_reward(policy) -> RewardModel:
    """A real explicit reward whose single linear layer rewards large +x, +z translations: it
    scores the candidates that leave the workspace highest."""
    net = build_net("explicit", policy, {"hidden": []})
    with torch.no_grad():
        layer = net.head[-1]
        layer.weight.zero_()
        layer.bias.zero_()
        a, first = policy.model.action_dim, layer.weight.shape[1] - policy.config.pred_horizon * policy.model.action_dim
        for t in range(policy.config.pred_horizon):
            layer.weight[0, first + t * a + 0] = 1.0
            layer.weight[0, first + t * a + 2] = 1.0
    return RewardModel(net, policy, {})


WORKSPACE_LOW, WORKSPACE_HIGH = np.array(DEFAULT_WORKSPACE.low), np.array(DEFAULT_WORKSPACE.high)


def _safe(
    tcp, chunk, first=1, step=DEFAULT_ACTION_LIMITS.max_step_translation, rot=DEFAULT_ACTION_LIMITS.max_step_rotation
):
    pos = np.array(tcp[:3], float)
    for a in chunk[first:]:
        if np.any(np.abs(a[:3]) > step + 1e-9) or np.any(np.abs(a[3:6]) > rot + 1e-9):
            return False
        pos = pos + a[:3]
        if np.any(pos < WORKSPACE_LOW) or np.any(pos > WORKSPACE_HIGH):
            return False
    return True


def test_selection_never_returns_an_unsafe_candidate(tiny_policy, toy_prefs, caplog):
    selector = CandidateSelector(_greedy_reward(tiny_policy), CandidateFilter(), first=1)
    history = toy_prefs.load_state(0)["history"]
    rng = np.random.default_rng(0)
    unsafe_best = 0
    for trial in range(60):
        tcp = np.r_[rng.uniform(WORKSPACE_LOW + 0.02, WORKSPACE_HIGH - 0.02), 1.0, 0, 0, 0]
        hist = [{**h, "tcp_pose": tcp.astype(np.float32)} for h in history]
        chunks = rng.uniform(-0.05, 0.05, (8, 8, 7))
        chunks[:, :, 2] += rng.uniform(-0.02, 0.05, (8, 1))  # some climb out of the box
        chunks[rng.random(8) < 0.2, 3, 0] = 0.09  # some break the per-step limit
        k = selector(hist, chunks)
        safe = [_safe(tcp, c) for c in chunks]
        scores = selector.last_scores
        if not any(safe):
            assert k == 0 and np.all(np.isnan(scores))
            continue
        assert safe[k], f"trial {trial}: picked unsafe candidate {k}"
        unsafe_best += not safe[int(np.argmax(chunks[:, 1:, 0].sum(1) + chunks[:, 1:, 2].sum(1)))]
    assert unsafe_best > 5  # the reward did prefer unsafe candidates often; the filter won
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="policies.preference.select"):
        out = np.zeros((4, 8, 7))
        out[:, :, 2] = 0.05  # every candidate climbs through the workspace ceiling
        hist = [{**h, "tcp_pose": np.array([0.5, 0, 0.55, 1, 0, 0, 0], np.float32)} for h in history]
        before = selector.fallbacks
        assert selector(hist, out) == 0
    assert selector.fallbacks == before + 1
    assert "executing the reference policy's first sample" in caplog.text


def test_selector_in_the_runner(tiny_policy, tmp_path):
    from policies.preference.checkpoint import save_reward

    reward = _greedy_reward(tiny_policy)
    save_reward(tmp_path / "r", reward.net, {"kind": "explicit", "task": "insert", "layout": _layout(tiny_policy),
                "reference": {}, "settings": {"hidden": []}})  # fmt: skip
    selector = make_selector(tiny_policy, "explicit", str(tmp_path / "r"), "insert")
    env = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)))
    runner = PolicyRunner(tiny_policy, RunnerConfig(num_samples=6), selector=selector, skill="insert")
    env.reset(seed=5)
    runner.reset(env)
    for _ in range(5):
        env.step(runner.act(env))
    assert selector.decisions == runner.decisions == 2 and selector.skill == "insert"
    with pytest.raises(RewardModelError, match="holds the explicit reward, but --select is implicit"):
        make_selector(tiny_policy, "implicit", str(tmp_path / "r"))
    with pytest.raises(ParameterError, match="needs --reward"):
        make_selector(tiny_policy, "explicit")
    with pytest.raises(ParameterError, match="unknown select 'best'"):
        make_selector(tiny_policy, "best")
    env.close()


def _layout(policy):
    from policies.preference.checkpoint import observation_layout

    return observation_layout(policy)


@pytest.mark.slow
def test_eval_command_with_selection(tiny_run, toy_prefs, tmp_path, capsys):
    assert main(["prefs", "train", str(toy_prefs.root), "--policy", str(tiny_run), "--out", str(tmp_path / "imp"),
                 "--steps", "5", "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    args = ["eval", "--policy", str(tiny_run), "--episodes", "1", "--families", "rectangle", "--quiet"]
    assert main([*args, "--select", "implicit", "--reward", str(tmp_path / "imp"), "--candidates", "4"]) == 0
    result = json.loads(capsys.readouterr().out.split("\noverall")[0])
    assert result["runner"]["select"] == "implicit" and result["overall"]["episodes"] == 1
    assert main([*args, "--select", "implicit", "--reward", str(tmp_path / "imp")]) == 2  # one candidate
    assert "--candidates >= 2" in capsys.readouterr().err
    assert main([*args, "--task", "grasp", "--select", "explicit", "--reward", str(tmp_path / "imp")]) == 2
