"""Long-horizon chains: stages run back to back from each other's end state (MuJoCo)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.env import make_env
from sim.experts import make_expert
from sim.objects import ObjectPool
from sim.rollout import run_episode


@pytest.fixture(scope="module")
def vertical():
    e = make_env("vertical_chain")
    yield e
    e.close()


@pytest.mark.slow
def test_vertical_chain_expert_goes_through_every_stage(vertical):
    results = [run_episode(vertical, make_expert("vertical_chain", seed=s), s) for s in range(3)]
    assert all(r.success for r in results), [(r.info["episode"]["stage"], r.info["metrics"]) for r in results]
    for r in results:
        assert r.info["episode"]["stage"] == 2  # finished in the insert stage
        assert r.info["metrics"]["depth"] >= 0.02
        assert r.steps <= 300


def test_chain_progress_rises_through_the_stages(vertical):
    expert = make_expert("vertical_chain", seed=5)
    _, info = vertical.reset(seed=5)
    expert.reset(vertical)
    stages, progress = [0], [info["progress"]]
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = vertical.step(expert.act(vertical))
        stages.append(vertical.episode.info["stage"])
        progress.append(info["progress"])
    assert info["success"]
    assert stages == sorted(stages) and set(stages) == {0, 1, 2}
    # Entering a stage never lowers progress below the stages already done.
    for stage, p in zip(stages, progress, strict=True):
        assert p >= stage / 3 - 1e-9
    assert progress[-1] == 1.0


def test_chain_scene_keeps_board_clear_of_the_peg_area():
    env = make_env("horizontal_chain")
    for seed in range(5):
        _, info = env.reset(seed=seed)
        poses = info["object_poses"]
        board, peg, fixture = poses["board"], poses["peg"], poses["fixture"]
        assert board[1] + 0.115 < peg[1] - 0.02  # the 230 mm board ends before the peg area
        assert np.hypot(*(fixture[:2] - peg[:2])) > 0.1
        assert len(info["episode"]["stages"]) == 4
    env.close()


@pytest.mark.slow
def test_horizontal_chain_expert_completes_seeds():
    # Seed 22 failed in the regrasp stage before the regrasp expert unwound the sideways hand the
    # place stage leaves (heading straight for the grasp drove joint 6 into its limit); seed 64
    # (arch M) in the insert stage, before a near half turn to the hole's yaw went the long way
    # round (joint 7 stopped at its limit 3 deg short of aligned).
    env = make_env("horizontal_chain")
    for seed in (0, 22, 64):
        result = run_episode(env, make_expert("horizontal_chain", seed=seed), seed)
        assert result.success and result.info["episode"]["stage"] == 3, (seed, result.info["metrics"])
    env.close()


def test_vertical_chain_square_circle_turns_the_long_way_when_needed():
    # Seeds 1 and 16 failed the rotate stage: the short turn took joint 7 to its limit and the
    # hand tilted the peg 17-30 deg; the chain now turns the wrist the long way round as a planned
    # move before the rotate skill (`WristTurn`), which then only turns the short way, as in its
    # task. Cut into stages, the rotate episode starts where the planner handed over.
    from sim.experts.base import YawTurn
    from sim.spatial import rotation_error
    from sim.stages import stage_episodes

    env = make_env("vertical_chain", objects=ObjectPool.fmb(families=("square_circle",)))
    for seed in (1, 16):
        result = run_episode(env, make_expert("vertical_chain", seed=seed), seed, record=True)
        assert result.success, (seed, result.info["metrics"])
        planned, stage = result.data["planned"], result.data["stage"]
        rotate = np.flatnonzero(stage == 1)
        assert planned.sum() >= 10 and set(stage[planned].tolist()) == {1}, seed  # before rotate only
        assert planned[rotate[0]] and not planned[rotate[-1]]
        meta = {**result.info["episode"], "seed": seed, "task": "vertical_chain", "success": True}
        skill, data, facts = stage_episodes(result.data, meta)[1]
        assert skill == "rotate" and facts["planned_steps_left_out"] == int(planned.sum())
        goal = np.asarray(facts["targets"]["tcp_goal"])
        assert abs(rotation_error(data["obs/tcp_pose"][0][3:], goal[3:])[2]) < YawTurn.NEAR
    env.close()
