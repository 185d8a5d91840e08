"""A skill server running a tiny GravMap policy (trained here on one demonstration): it builds the
sub-goals from perceived poses (no ground truth) and publishes them as markers over DDS; a preference
selection with a reward model that is not there is refused, and the node stays up."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
pytest.importorskip("torch", reason="policies need the 'learn' extra (torch)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

pytestmark = [pytest.mark.graph, pytest.mark.train]

BASE = "panda_link0"


@pytest.fixture(scope="module")
def gravmap_run(tmp_path_factory):
    from policies.train import train
    from sim.collect import RunSpec, collect
    from tests.policies.conftest import tiny, tiny_training

    root = tmp_path_factory.mktemp("gravmap_skill")
    collect(RunSpec("grasp", families=("rectangle",)), root / "demo", episodes=1, progress=False)
    train(
        [root / "demo"],
        root / "run",
        tiny(conditioners=("gravmap",)),
        tiny_training(steps=2),
        progress=False,
        log=lambda m: None,
    )
    return root / "run"


def skill_node(context, run, name: str, **params):
    from fmb_ros.skill_server import SkillServerNode

    values = dict(checkpoint=str(run), device="cpu", inference="sync", candidates=2, ground_truth_namespace="")
    values.update(params)
    overrides = [Parameter(k, value=v) for k, v in values.items()]
    return SkillServerNode(name, context=context, parameter_overrides=overrides)


def test_gravmap_policy_publishes_its_perceived_subgoal(context, gravmap_run):
    from fmb_ros import convert
    from policies.gravmap.subgoals import PRE_GRASP
    from sim.env import make_env
    from sim.spatial import compose

    env = make_env("grasp", seed=3)
    env.reset(seed=3)
    node = skill_node(context, gravmap_run, "gravmap_skill", inference="async")
    client = rclpy.create_node("marker_client", context=context)
    arrays: list[MarkerArray] = []
    client.create_subscription(MarkerArray, "/gravmap_skill/markers", arrays.append, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(client)
    try:
        assert node.run is not None, node.error
        w = node.world
        w.set_tcp(env.tcp_pose(), node.now())
        # Task facts but no object ground truth: the peg's pose comes from perception (target_topic).
        w.set_episode(env.episode.info)
        peg = env.object_pose("peg")
        node.on_target(convert.pose_stamped_msg(peg, BASE, node.now()))
        assert not w.has_ground_truth
        assert node.on_goal(convert.pose_stamped_msg(peg, BASE, node.now()))
        tracker = node.run.controller.runner.subgoals
        expected = compose(peg, np.asarray(env.episode.info["targets"]["grasp_in_peg"]))[:3] + [0, 0, PRE_GRASP]
        assert tracker.current.position == pytest.approx(expected)
        deadline = time.monotonic() + 15.0
        found = None
        while found is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            for array in arrays:
                spheres = [m for m in array.markers if m.ns == "subgoal"]
                if spheres and any(m.ns == "gravmap" and m.points for m in array.markers):
                    found = spheres[0]
        assert found is not None, f"no sub-goal marker in {len(arrays)} marker arrays"
        p = found.pose.position
        assert (p.x, p.y, p.z) == pytest.approx(tuple(tracker.current.position), abs=1e-6)
        assert found.header.frame_id == BASE and found.text == tracker.current.name
        # The asynchronous runner decides with the sub-goal in its observation (fresh observations).
        runner = node.run.controller.runner
        deadline = time.monotonic() + 15.0
        while runner.decisions < 1 and time.monotonic() < deadline:
            w.set_tcp(env.tcp_pose(), node.now())
            node.on_tick()
            time.sleep(0.05)
        assert runner.decisions >= 1 and node.run.state.value == "running", node.run.message
        assert "subgoal" in runner.runner.history[-1]
    finally:
        executor.shutdown()
        client.destroy_node()
        node.destroy_node()
        env.close()


def test_preference_selection_without_its_reward_model_is_refused(context, gravmap_run):
    node = skill_node(context, gravmap_run, "select_skill", select="implicit", reward="/nonexistent/reward")
    try:
        assert node.run is None
        assert "/nonexistent/reward" in node.error and "reward model" in node.error, node.error
        node.on_tick()  # stays up, publishing the error status
    finally:
        node.destroy_node()
    node = skill_node(context, gravmap_run, "select_skill2", select="implicit")
    try:
        assert node.run is None and "reward parameter" in node.error, node.error
    finally:
        node.destroy_node()


def test_goal_without_the_poses_or_facts_of_its_subgoals_is_rejected(context, gravmap_run):
    from fmb_ros import convert
    from sim.env import make_env

    env = make_env("grasp", seed=3)
    env.reset(seed=3)
    node = skill_node(context, gravmap_run, "gravmap_reject", inference="sync")
    results = []
    node.publish_result = lambda level, state, message, goal_stamp=None: results.append((state, message))
    peg = env.object_pose("peg")
    try:
        node.world.set_tcp(env.tcp_pose(), node.now())
        assert not node.on_goal(convert.pose_stamped_msg(peg, BASE, node.now()))  # nothing perceived
        assert results[-1][0] == "rejected" and "pose of 'peg'" in results[-1][1], results
        node.on_target(convert.pose_stamped_msg(peg, BASE, node.now()))
        assert not node.on_goal(convert.pose_stamped_msg(peg, BASE, node.now()))  # no episode facts
        assert "GravMap sub-goals for grasp need the task fact 'targets'" in results[-1][1], results
        assert node.run.state.value == "idle"
    finally:
        node.destroy_node()
        env.close()


def test_explicit_selection_runs_and_keeps_real_scores(context, gravmap_run, tmp_path):
    from fmb_ros import convert
    from policies.preference.checkpoint import build_net, observation_layout, save_reward
    from policies.runtime.policy import Policy
    from sim.env import make_env

    policy = Policy.load(gravmap_run, "cpu")
    net = build_net("explicit", policy, {"hidden": []})  # a real (untrained) explicit reward network
    meta = {"kind": "explicit", "task": "grasp", "layout": observation_layout(policy), "reference": {}}
    save_reward(tmp_path / "reward", net, {**meta, "settings": {"hidden": []}})
    wrong = skill_node(context, gravmap_run, "kind_skill", select="implicit", reward=str(tmp_path / "reward"))
    try:
        assert wrong.run is None and "holds the explicit reward" in wrong.error and str(tmp_path) in wrong.error
    finally:
        wrong.destroy_node()

    env = make_env("grasp", seed=3)
    env.reset(seed=3)
    node = skill_node(
        context, gravmap_run, "explicit_skill", select="explicit", reward=str(tmp_path / "reward"), candidates=4
    )
    try:
        assert node.run is not None, node.error
        assert "explicit preference selection of 4" in node.run.controller.description
        w = node.world
        w.set_tcp(env.tcp_pose(), node.now())
        w.set_episode(env.episode.info)
        node.on_target(convert.pose_stamped_msg(env.object_pose("peg"), BASE, node.now()))
        assert node.on_goal(convert.pose_stamped_msg(env.object_pose("peg"), BASE, node.now()))
        w.set_tcp(env.tcp_pose(), node.now())
        node.on_tick()
        recorder = node.run.controller.runner.candidates
        assert recorder.last is not None, node.run.message
        chunks, _, chosen, scores = recorder.last
        assert len(chunks) == len(scores) == 4 and np.isfinite(scores).any()
        assert chosen == int(np.nanargmax(scores)) and recorder.scorer.decisions == 1
    finally:
        node.destroy_node()
        env.close()
