"""`fmb_ros.spin.executor_for`: which rclpy executor spins a process's nodes (real nodes)."""

from __future__ import annotations

import os

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from rclpy.callback_groups import ReentrantCallbackGroup  # noqa: E402
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from fmb_ros.spin import executor_for  # noqa: E402
from tests.fmb_ros.dds import ros_domain_id  # noqa: E402


def test_one_node_on_its_default_group_spins_single_threaded_others_multi_threaded(tmp_path):
    """The recorder (one node, every callback in its default group) gets the single-threaded
    executor; fmb_perception (its estimate in a group of its own), two nodes in one process, or a
    node that adds a reentrant callback get the multi-threaded one."""
    from fmb_ros.perception_node import PerceptionNode
    from fmb_ros.recorder_node import RecorderNode

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id())
    nodes = []
    try:
        recorder = RecorderNode(context=ctx, parameter_overrides=[Parameter("store", value=str(tmp_path))])
        perception = PerceptionNode(context=ctx)
        nodes += [recorder, perception]
        assert isinstance(executor_for([recorder]), SingleThreadedExecutor)
        assert isinstance(executor_for([perception]), MultiThreadedExecutor)
        assert isinstance(executor_for([recorder, perception]), MultiThreadedExecutor)
        recorder.create_timer(1.0, lambda: None, callback_group=ReentrantCallbackGroup())
        assert isinstance(executor_for([recorder]), MultiThreadedExecutor)
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)
