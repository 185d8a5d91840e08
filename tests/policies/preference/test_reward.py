"""Reward models on the toy preference set: diffusion-DPO and Bradley-Terry training, the implicit
reward's ranking of expert chunks over corrupted ones, and checkpoint checks."""

import dataclasses
import json

import numpy as np
import pytest

from fmb.cli import main
from policies.common.features import MinMaxNormalizer
from policies.factory import build_model
from policies.preference.checkpoint import load_reward
from policies.preference.exceptions import RewardModelError
from policies.preference.train import RewardTrainConfig, split_states, train_reward
from policies.runtime.policy import Policy
from tests.policies.preference.conftest import corrupt

pytestmark = pytest.mark.train

IMPLICIT = RewardTrainConfig(model="implicit", steps=80, batch_size=16, lr=3e-4, beta=200.0, max_timestep=4)


@pytest.fixture(scope="module")
def implicit(toy_prefs, tiny_policy, tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("reward") / "implicit"
    return out, train_reward(toy_prefs.root, tiny_policy, out, IMPLICIT, progress=False, policy_path=str(tiny_run))


@pytest.mark.slow
def test_dpo_loss_decreases_and_prefers_the_winner(implicit):
    _, summary = implicit
    assert summary["final_loss"] < 0.5 * np.log(2.0)  # starts at log 2 (theta = reference)
    assert summary["accuracy"]["train"] >= 0.9
    assert summary["data"]["heldout_pairs"] > 0 and summary["data"]["labels"]["tie"] > 0


def test_implicit_reward_ranks_expert_chunk_above_corrupted(implicit, toy_prefs, tiny_policy):
    out, summary = implicit
    assert summary["accuracy"]["heldout"] >= 0.8
    reward = load_reward(out, tiny_policy, "insert")
    rng = np.random.default_rng(1)
    _, held = split_states([f"state {i}" for i in range(len(toy_prefs))], IMPLICIT.holdout, IMPLICIT.seed)
    hits = 0
    for i in held:  # fresh corruptions of the held-out states' expert chunks
        state = toy_prefs.load_state(i)
        winner = next(a if lab == "first" else b for a, b, lab in toy_prefs.states[i]["pairs"] if lab != "tie")
        good = state["candidates"][winner]
        scores = reward.score(state["history"], np.stack([good, corrupt(good, rng, 0.03)]), "insert")
        hits += scores[0] > scores[1]
    assert hits >= 0.8 * len(held)


@pytest.mark.slow
def test_explicit_bradley_terry_reward(toy_prefs, tiny_run, tmp_path, capsys):
    code = main(
        ["prefs", "train", str(toy_prefs.root), "--policy", str(tiny_run), "--out",
         str(tmp_path / "explicit"), "--model", "explicit", "--steps", "150", "--batch-size", "16", "--lr", "3e-3",
         "--quiet"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "explicit" and summary["final_loss"] < 0.6
    assert summary["accuracy"]["train"] >= 0.9


def _other_policy(policy, **changes) -> Policy:
    """A policy like `policy` with config `changes` (untrained weights, the same normalisers)."""
    config = dataclasses.replace(policy.config, **changes)
    shapes = dict(policy.model.shapes)
    model = build_model(config, shapes)
    state, action = policy.state_normalizer, policy.action_normalizer
    return Policy(model, MinMaxNormalizer(state.low, state.high), action, dict(policy.meta), "cpu")


def test_reward_checkpoint_checks(implicit, tiny_policy, tmp_path):
    out, _ = implicit
    with pytest.raises(RewardModelError, match="trained for task 'insert', used for task 'grasp'"):
        load_reward(out, tiny_policy, "grasp")
    with pytest.raises(RewardModelError, match="another observation layout.*pred_horizon"):
        load_reward(out, _other_policy(tiny_policy, pred_horizon=16, action_horizon=4), "insert")
    with pytest.raises(RewardModelError, match="other weights"):
        load_reward(out, _other_policy(tiny_policy), "insert")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RewardModelError, match="not valid JSON"):
        load_reward(tmp_path, tiny_policy)
    with pytest.raises(RewardModelError, match="missing"):
        load_reward(tmp_path / "nothing", tiny_policy)


def test_preferences_of_another_policy_layout_are_refused(toy_prefs, tiny_policy, tmp_path):
    from policies.preference.data import PreferenceSet
    from policies.preference.exceptions import PreferenceDataError

    theirs = dict(tiny_policy.config.to_dict(), points=256)
    pset = PreferenceSet.create(tmp_path / "p", {"task": "insert", "policy_config": theirs})
    state = toy_prefs.load_state(0)
    pset.add_state(state["history"], state["candidates"], pairs=toy_prefs.states[0]["pairs"])
    with pytest.raises(PreferenceDataError, match="another observation layout.*points: collected 256"):
        train_reward(pset.root, tiny_policy, tmp_path / "r", IMPLICIT, progress=False)


@pytest.mark.slow
def test_head_finetune_shares_one_unet_pass(toy_prefs, tiny_policy, tmp_path):
    import torch

    from policies.preference.reward import ImplicitReward

    net = ImplicitReward(tiny_policy.model, 100.0, 4, 4, finetune="head")
    state = toy_prefs.load_state(0)
    batch = tiny_policy.batch(state["history"], "insert")
    acts = torch.as_tensor(tiny_policy.action_normalizer.normalize(state["candidates"]))
    t, noise = torch.tensor([1, 3, 0, 2, 1]), torch.randn_like(acts)
    cond = tiny_policy.model.encoder(batch).expand(len(acts), -1)
    e_theta, e_ref = net._errors(cond, cond, acts, t, noise)
    torch.testing.assert_close(e_ref, tiny_policy.model.denoising_error(cond, acts, t, noise))
    torch.testing.assert_close(e_theta, e_ref)  # the untrained head is the reference's
    config = dataclasses.replace(IMPLICIT, finetune="head", lr=3e-3, steps=60)
    summary = train_reward(toy_prefs.root, tiny_policy, tmp_path / "head", config, progress=False)
    assert summary["final_loss"] < 0.6 and summary["accuracy"]["train"] >= 0.8
    assert load_reward(tmp_path / "head", tiny_policy).net.finetune == "head"


def test_split_keeps_episodes_together():
    groups = [7, 7, 8, 9, 9, 9, 10, 11]
    train, held = split_states(groups, 0.4, 0)
    assert sorted(train + held) == list(range(8)) and held and train
    assert not {groups[i] for i in train} & {groups[i] for i in held}
