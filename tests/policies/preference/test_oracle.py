"""The oracle bound of selection (`--select oracle`) with a tiny policy on real MuJoCo rollouts."""

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from policies.experiments.evaluate import PolicyRunSpec
from policies.preference.collect import outcome_key, rollout_candidate
from policies.preference.oracle import OracleRunner
from policies.preference.select import make_selector
from policies.runtime.runner import RunnerConfig, make_runner


def test_the_oracle_executes_the_candidate_whose_rollout_ends_best(tiny_run, tiny_policy):
    """At a decision the oracle tries every candidate from a snapshot, leaves the episode's state
    as it found it, and executes the one whose rollout ends best; trying them again from the same
    state gives the same outcomes (the rollouts are seeded), so no candidate beats its choice."""
    config = RunnerConfig(num_samples=4, action_horizon=2, select="oracle")
    spec = PolicyRunSpec(str(tiny_run), "insert", families=("rectangle",), runner=config, goals="truth", device="cpu")
    env, runner = spec.build()
    assert isinstance(runner, OracleRunner)
    try:
        env.reset(seed=5)
        runner.reset(env)
        runner.rng = np.random.default_rng(5)
        for _ in range(3):
            env.step(runner.act(env))  # a few steps in: the candidates' starts differ from the reset
        runner.observe(env)
        history = list(runner.history)
        chunks = runner.sample(history, 11)
        before = (env.steps, env.tcp_pose().copy(), env.object_pose("peg").copy())
        runner._world = env
        chosen = runner.choose(history, chunks)
        runner._world = None
        assert env.steps == before[0]
        np.testing.assert_array_equal(env.tcp_pose(), before[1])
        np.testing.assert_array_equal(env.object_pose("peg"), before[2])
        outcomes = runner.last_outcomes
        assert len(outcomes) == 4 and len({round(o["progress"], 6) for o in outcomes}) > 1, outcomes
        k = next(i for i, c in enumerate(chunks) if np.array_equal(c, chosen))
        assert all(outcome_key(outcomes[k]) >= outcome_key(o) for o in outcomes)
        snap = env.snapshot()
        seed = 7_919 * (runner.decisions + 1) + runner.t
        again = [rollout_candidate(env, runner, snap, c, runner.continue_steps, seed)[0] for c in chunks]
        env.restore(snap)
        assert again == outcomes
    finally:
        env.close()


def test_the_oracle_is_refused_where_there_is_no_simulator(tiny_policy):
    """A robot has nothing to try candidates in: the selector factory and a world without
    snapshots refuse `oracle` by name."""
    with pytest.raises(ParameterError, match="oracle"):
        make_selector(tiny_policy, "oracle")
    with pytest.raises(ParameterError, match="oracle"):
        make_runner(tiny_policy, RunnerConfig(num_samples=2, select="oracle"))  # what the ROS skill server builds
    runner = OracleRunner(tiny_policy, RunnerConfig(num_samples=2, select="oracle"))

    class World:  # what a ROS world mirror offers a runner: observations, no snapshot
        last_observation = {}

    with pytest.raises(ParameterError, match="select oracle tries candidates in a simulator"):
        runner.act(World())
