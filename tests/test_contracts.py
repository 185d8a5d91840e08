"""The contracts of `sim.contracts` hold for their implementations: the simulator and the ROS mirror
are worlds a controller reads; experts and policy runners are controllers; policy runners (and the
asynchronous wrapper) take their goal and sub-goals from the caller."""

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from fmb_ros.world import SceneView, WorldMirror
from policies.experiments.bench import build_policy
from policies.runtime.async_runner import AsyncPolicyRunner
from policies.runtime.perceived import RobotLoopRunner
from policies.runtime.runner import PolicyRunner, RunnerConfig
from sim.contracts import Controller, ControllerWorld, EpisodeFacts, GoalConditioned
from sim.env import make_env
from sim.experts import make_expert
from sim.objects import ObjectPool


@pytest.fixture(scope="module")
def env():
    env = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)))
    env.reset(seed=2)
    yield env
    env.close()


def test_the_simulator_and_the_ros_mirror_are_controller_worlds(env):
    mirror = WorldMirror()
    mirror.set_episode(env.episode.info)
    for world in (env, mirror):
        assert isinstance(world, ControllerWorld), type(world).__name__
        assert isinstance(world.episode, EpisodeFacts) and world.episode.info["peg"] == env.episode.info["peg"]
    view = SceneView("insert", env.episode.info, {"board": env.object_pose("board")}, env.tcp_pose())
    assert isinstance(view.episode, EpisodeFacts)
    assert not isinstance(object(), ControllerWorld)


def test_experts_are_controllers_and_policy_runners_take_their_goal(env):
    expert = make_expert("insert")
    assert isinstance(expert, Controller) and not isinstance(expert, GoalConditioned)
    runner = PolicyRunner(build_policy("small"), RunnerConfig(guidance=0.5))
    assert isinstance(runner, GoalConditioned)
    assert runner.goal_key == "" and runner.needs_subgoals  # guided by sub-goals, no goal input
    asynchronous = AsyncPolicyRunner(runner)
    try:
        assert isinstance(asynchronous, GoalConditioned)
        assert (asynchronous.goal_key, asynchronous.needs_subgoals) == (runner.goal_key, runner.needs_subgoals)
    finally:
        asynchronous.close()
    # sub-goals handed to reset are the ones tracked; left out, they come from the world's poses
    from policies.gravmap.subgoals import privileged_subgoals

    truth = privileged_subgoals(env)
    moved = [s._replace(position=s.position + 0.01) for s in truth]
    runner.reset(env, subgoals=moved)
    np.testing.assert_allclose(runner.subgoals.subgoals[0].position, truth[0].position + 0.01)
    runner.reset(env)
    np.testing.assert_allclose(runner.subgoals.subgoals[0].position, truth[0].position)
    with pytest.raises(ParameterError, match="GoalConditioned"):
        RobotLoopRunner(expert)


def test_the_simulator_and_the_ros_mirror_observe_by_one_schema(env):
    """Both build the observation from `sim.observation`: same keys, shapes, dtypes; and the
    environment's observation space is the schema's."""
    from sim import observation

    cameras = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)), cameras=("side_1",), point_cloud=512)
    obs, _ = cameras.reset(seed=2)
    assert observation.check(obs) == [] and {"rgb/side_1", "depth/side_1", "points"} <= set(obs)
    assert set(cameras.observation_space.spaces) == set(obs)
    assert all(cameras.observation_space[k].shape == np.shape(v) for k, v in obs.items())
    cameras.close()
    mirror = WorldMirror()
    mirror.set_tcp(env.tcp_pose(), 0.0)
    mirror.arrays["points"] = obs["points"]
    seen = mirror.last_observation
    assert observation.check(seen) == [] and set(seen) == {e.key for e in observation.PROPRIOCEPTION} | {"points"}
    assert {k: v.dtype for k, v in seen.items() if k != "points"} == {
        k: v.dtype for k, v in env.last_observation.items() if k in seen and k != "points"
    }
    bad = {**seen, "tcp_pose": seen["tcp_pose"][:3], "speed": np.zeros(1)}
    del bad["q"]
    assert observation.check(bad) == ["missing 'q'", "unknown key 'speed'", "'tcp_pose': shape (3,), expected (7,)"]
