"""End to end in simulation: a diffusion policy trained on one demonstration reproduces it, and
the `fmb train` / `fmb eval` commands run on real data."""

import json

import numpy as np
import pytest

from fmb.cli import main
from fmb_core.errors import ParameterError
from policies.experiments.evaluate import PolicyRunSpec, evaluate
from policies.runtime.policy import Policy
from policies.runtime.runner import PolicyRunner, RunnerConfig
from policies.train import train
from sim.collect import RunSpec, collect
from sim.env import make_env
from sim.objects import ObjectPool
from sim.rollout import run_episode
from tests.policies.conftest import tiny, tiny_training

pytestmark = pytest.mark.train

SEED = 0


@pytest.mark.slow
def test_overfit_one_demonstration_reproduces_it(tmp_path):
    """Trained on a single expert insertion, the policy succeeds on that episode's seed, whatever
    the sampling noise of the runner."""
    pool = ObjectPool.fmb(families=("rectangle",))
    collect(RunSpec("insert", families=("rectangle",)), tmp_path / "demo", episodes=1, seed=SEED, progress=False)
    config = tiny(
        down_dims=(32, 64), feature_dim=32, n_groups=8, step_embed_dim=32, train_timesteps=100, inference_steps=10
    )
    train(
        [tmp_path / "demo"],
        tmp_path / "run",
        config,
        tiny_training(steps=600, checkpoint_every=600, batch_size=16),  # 400 was enough for 6 of 6 seeds
        progress=False,
        log=lambda m: None,
    )
    policy = Policy.load(tmp_path / "run", "cpu")
    env = make_env("insert", objects=pool)
    for sampling_seed in range(4):
        runner = PolicyRunner(policy)
        runner.rng = np.random.default_rng(sampling_seed)
        result = run_episode(env, runner, SEED)
        assert result.success, result.info["metrics"]
    env.close()


def test_runner_ensembling_and_candidates(state_store, tmp_path):
    train([state_store.root], tmp_path / "run", tiny(), tiny_training(steps=5), progress=False, log=lambda m: None)
    policy = Policy.load(tmp_path / "run", "cpu")
    env = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)))
    picked = []

    def last(history, candidates):
        assert candidates.shape == (6, 8, 7) and len(history) == 1  # the first step of the episode
        picked.append(candidates[-1])
        return len(candidates) - 1

    runner = PolicyRunner(policy, RunnerConfig(num_samples=6), selector=last)
    env.reset(seed=1)
    runner.reset(env)
    a0 = runner.act(env)
    np.testing.assert_allclose(a0[:6], picked[0][1, :6], rtol=1e-5)  # the chosen chunk's current step
    for _ in range(3):
        env.step(runner.act(env))
    assert runner.decisions == 1  # action_horizon 4: one decision for four steps
    smooth = PolicyRunner(policy, RunnerConfig(ensemble=0.5))
    env.reset(seed=1)
    smooth.reset(env)
    for _ in range(3):
        action = smooth.act(env)
        assert action.shape == (7,) and action[6] in (0.0, 1.0)
        env.step(action)
    assert smooth.decisions == 3  # ensembling re-plans every step
    env.close()


@pytest.mark.slow
def test_train_and_eval_commands(state_store, tmp_path, capsys):
    run = tmp_path / "run"
    argv = [
        "train",
        "--data",
        str(state_store.root),
        "--out",
        str(run),
        "--steps",
        "3",
        "--config",
        "small",
        "--policy-type",
        "bc",
        "--task",
        "insert",
        "--quiet",
    ]
    assert main(argv) == 0
    capsys.readouterr()
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--policy",
                str(run),
                "--episodes",
                "2",
                "--families",
                "rectangle",
                "--videos",
                "1",
                "--out",
                str(out),
                "--json",
                str(tmp_path / "r.json"),
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["overall"]["episodes"] == 2 and result["task"] == "insert"
    assert set(result["per_family"]) == {"rectangle"} and 0 <= result["overall"]["success_rate"] <= 1
    videos = list(out.glob("episode_*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    capsys.readouterr()

    assert main(["train", "--data", str(state_store.root), "--out", str(tmp_path / "x"), "--task", "grasp"]) == 2
    assert "--task grasp: the data holds insert" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    assert main(["eval", "--policy", str(run), "--task", "grasp", "--episodes", "1"]) == 2
    assert "trained for insert" in capsys.readouterr().err
    assert main(["eval", "--policy", str(run), "--split", "nope", "--episodes", "1"]) == 2
    assert "nope" in capsys.readouterr().err


def test_evaluate_held_out_side(state_store, tmp_path):
    train(
        [state_store.root],
        tmp_path / "run",
        tiny(policy_type="bc"),
        tiny_training(steps=3),
        progress=False,
        log=lambda m: None,
    )
    spec = PolicyRunSpec(str(tmp_path / "run"), split="family_holdout", side="test", families=("star",))
    result = evaluate(spec, 1, progress=False)
    assert set(result["per_family"]) == {"star"} and result["split"] == {"name": "family_holdout", "side": "test"}


def test_goal_conditioned_runner_takes_the_goal_from_the_task_or_the_caller(state_store, tmp_path):
    train(
        [state_store.root],
        tmp_path / "run",
        tiny(goal="hole"),
        tiny_training(steps=3),
        progress=False,
        log=lambda m: None,
    )
    policy = Policy.load(tmp_path / "run", "cpu")
    env = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)))
    env.reset(seed=4)
    runner = PolicyRunner(policy)
    runner.reset(env)
    np.testing.assert_allclose(runner.goal_pose, env.episode.info["targets"]["hole"])
    assert runner.act(env).shape == (7,)
    runner.reset(None)  # no task to read it from: the caller must give it
    with pytest.raises(RuntimeError, match="goal"):
        runner.act(env)
    perceived = np.asarray(env.episode.info["targets"]["hole"]) + [0.001, 0, 0, 0, 0, 0, 0]
    runner.reset(env, goal=perceived)  # a goal from perception, not the task's
    np.testing.assert_allclose(runner.goal_pose, perceived)
    assert runner.act(env).shape == (7,)
    with pytest.raises(ParameterError, match="finite"):
        runner.reset(env, goal=np.full(7, np.nan))
    env.close()
