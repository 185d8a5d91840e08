"""The grasp task: resting poses, its success check, and its expert (MuJoCo)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cad import FMB_SHAPES, PegSpec, get_shape
from sim.env import make_env
from sim.experts import make_expert
from sim.objects import ObjectPool
from sim.rollout import run_episode
from sim.tasks.grasp import lowest_point, lying_grasp_height, lying_pose, section_width, standing_grasp_x


@pytest.mark.parametrize("family", FMB_SHAPES)
def test_lying_pose_rests_on_the_table(family):
    spec = PegSpec(get_shape(family), size="L")
    section, length = spec.section(), spec.length_m
    peg, support, n = lying_pose(section, length, (0.5, 0.1), 0.9)
    pts = np.array([[x, y, z] for x, y in np.asarray(section.exterior.coords) for z in (0.0, length)])
    world = Rotation.from_quat(peg[3:]).apply(pts) + peg[:3]
    assert world[:, 2].min() == pytest.approx(0.0, abs=1e-9)
    assert np.sum(world[:, 2] < 1e-7) >= 4  # a whole face (an edge at both ends) on the table
    axis = Rotation.from_quat(peg[3:]).apply([0, 0, 1])
    np.testing.assert_allclose(axis, [np.cos(0.9), np.sin(0.9), 0.0], atol=1e-12)
    np.testing.assert_allclose(peg[:2] + 0.5 * length * axis[:2], [0.5, 0.1], atol=1e-12)  # centred
    hull = np.asarray(section.convex_hull.exterior.coords)
    assert lowest_point(peg, hull, length) == pytest.approx(0.0, abs=1e-9)
    height = lying_grasp_height(section, n, support)
    top = world[:, 2].max()
    assert 0.010 <= height <= top and height >= top - 0.042


@pytest.fixture(scope="module")
def env():
    e = make_env("grasp")
    yield e
    e.close()


@pytest.mark.slow
def test_grasp_expert_succeeds(env):
    results = [run_episode(env, make_expert("grasp", seed=s), s) for s in range(10)]
    assert sum(r.success for r in results) >= 9
    assert {r.info["episode"]["standing"] for r in results} == {True, False}  # both start poses seen
    for r in results:
        if r.success:
            assert r.info["metrics"]["lift"] >= 0.05 and r.info["metrics"]["held"] == 1.0
            assert r.steps <= 70


def test_closing_without_reaching_is_not_success(env):
    env.reset(seed=0)
    for _ in range(10):
        _, reward, terminated, _, info = env.step([0, 0, 0.01, 0, 0, 0, 1])
    assert not info["success"] and not terminated and reward == 0.0
    assert info["metrics"]["held"] == 0.0 and info["progress"] < 0.5


def test_lifting_then_dropping_fails_the_check(env):
    """Grasped and lifted, the check fires; opened again, the peg falls and it no longer holds."""
    expert = make_expert("grasp", seed=1)
    result = run_episode(env, expert, 1)
    assert result.success
    for _ in range(5):
        _, _, _, _, info = env.step([0, 0, 0, 0, 0, 0, 0])  # open
    assert not info["success"] and info["metrics"]["held"] == 0.0


def test_standing_grasp_keeps_off_a_neck():
    # The square-circle's axis is on its 10 mm neck: pads centred there stop on the square's edge
    # on one side only and the peg pivots. Its grasp moves onto the square; the others stay centred.
    for family in ("rectangle", "round", "star", "three_prong", "double_square", "square_circle"):
        for size in ("S", "M", "L"):
            spec = ObjectPool.fmb(families=(family,), sizes=(size,)).draw(np.random.default_rng(0))
            x = standing_grasp_x(spec.section())
            if family == "square_circle":
                assert x < -0.01  # onto the square (negative x), off the neck
                assert section_width(spec.section(), x) == pytest.approx(spec.section().bounds[3] * 2, abs=1e-4)
            else:
                assert x == 0.0
