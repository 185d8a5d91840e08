"""place_on_fixture and regrasp: their success checks and experts (MuJoCo)."""

from __future__ import annotations

import pytest

from sim.env import make_env
from sim.experts import make_expert
from sim.rollout import run_episode


@pytest.fixture(scope="module")
def place_env():
    e = make_env("place_on_fixture")
    yield e
    e.close()


@pytest.fixture(scope="module")
def regrasp_env():
    e = make_env("regrasp")
    yield e
    e.close()


def test_place_starts_from_a_physical_grasp(place_env):
    _, info = place_env.reset(seed=2)
    assert place_env.touching("peg", "left_finger") and place_env.touching("peg", "right_finger")
    assert info["metrics"]["tilt"] > 1.3  # lying: axis about horizontal
    assert not info["success"]


@pytest.mark.slow
def test_place_expert(place_env):
    # Seeds 0-3 always succeeded; 9 (hexagon L: the arm stalled at a joint limit), 13 (star S:
    # squirted out of soft finger contacts), 22 (double-square L: joint-6 limit on the straight
    # turn) failed before the turn-then-pitch expert and the stiff finger contacts.
    for seed in (0, 1, 2, 3, 9, 13, 22):
        result = run_episode(place_env, make_expert("place_on_fixture", seed=seed), seed)
        assert result.success, (seed, result.info["metrics"])
        m = result.info["metrics"]
        assert m["tip_depth"] >= 0.02 and m["released"] == 1.0


def test_dropping_the_peg_is_not_placing_it(place_env):
    place_env.reset(seed=0)
    for _ in range(8):
        _, _, terminated, _, info = place_env.step([0, 0, 0, 0, 0, 0, 0])  # open where it is
    assert not info["success"] and not terminated
    assert info["metrics"]["released"] == 1.0


def test_regrasp_expert(regrasp_env):
    results = [run_episode(regrasp_env, make_expert("regrasp", seed=s), s) for s in range(5)]
    assert all(r.success for r in results), [r.info["metrics"] for r in results]
    for r in results:
        assert r.info["metrics"]["tip_above_fixture"] >= 0.01


def test_regrasp_without_reaching_fails(regrasp_env):
    regrasp_env.reset(seed=1)
    for _ in range(6):
        _, _, _, _, info = regrasp_env.step([0, 0, 0.02, 0, 0, 0, 1])
    assert not info["success"] and info["metrics"]["held"] == 0.0
