"""`fmb bench goal-response`: goal gains of a trained policy and of the demonstrations."""

import json

import pytest

from fmb.cli import main
from fmb_core.errors import ParameterError
from policies.experiments.diagnostics import goal_response
from policies.train import train
from tests.policies.conftest import tiny, tiny_training

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def goal_bc(state_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "bc_goal"
    config = tiny(policy_type="bc", goal="tcp_goal", points=0)
    train([state_store.root], out, config, tiny_training(steps=300, checkpoint_every=300), progress=False, log=print)
    return out


def test_goal_gains_of_a_trained_policy_and_of_the_expert(goal_bc, state_store, capsys):
    result = goal_response(goal_bc, [state_store.root])
    assert result["windows"] > 10
    # The scripted expert corrects a lateral goal error in one step: its own gains are near 1.
    for axis in "xy":
        assert 0.7 < result["demonstration_gain"][axis] < 1.3, result["demonstration_gain"]
    # 300 steps of regression already follow the goal (measured 0.2; an untrained head: about 0).
    assert result["goal_gain_lateral"] > 0.1, result["goal_gain"]
    assert 0.0 < result["open_loop_error_mm"]["median"] < 20.0
    # Deterministic: the same weights give the same figures (the CLI path too).
    assert main(["bench", "goal-response", "--policy", str(goal_bc), "--data", str(state_store.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["goal_gain"] == result["goal_gain"]


def test_goal_response_needs_a_goal_conditioned_policy(state_store, tmp_path, capsys):
    plain = tmp_path / "plain"
    train([state_store.root], plain, tiny(points=0), tiny_training(steps=2), progress=False, log=lambda m: None)
    with pytest.raises(ParameterError, match="--goal"):
        goal_response(plain, [state_store.root])
    args = ["bench", "goal-response", "--policy", str(plain), "--data", str(state_store.root), "--shift", "0"]
    assert main(args) == 2
    assert "--shift" in capsys.readouterr().err
