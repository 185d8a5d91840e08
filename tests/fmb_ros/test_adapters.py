"""Robot-only interfaces (control_msgs, franka_msgs, tf2_ros: not on PyPI) fail clearly when absent;
the skill server takes its target from a perception topic and the mink solver by parameter."""

from __future__ import annotations

import importlib.util

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from rclpy.parameter import Parameter  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from fmb_ros.exceptions import RosError  # noqa: E402

pytestmark = pytest.mark.graph

ROBOT_ONLY = ("control_msgs", "franka_msgs", "tf2_ros")


def _absent(package: str) -> bool:
    return importlib.util.find_spec(package) is None


@pytest.mark.parametrize(
    "overrides, parameter, package",
    [
        ({"command_interface": "follow_joint_trajectory"}, "command_interface follow_joint_trajectory", "control_msgs"),
        ({"gripper_interface": "franka_action"}, "gripper_interface franka_action", "franka_msgs"),
    ],
)
def test_robot_only_interfaces_name_what_is_missing(context, overrides, parameter, package):
    if not _absent(package):
        pytest.skip(f"{package} is installed here (a ROS install): nothing is missing")
    from fmb_ros.skill_server import SkillServerNode

    params = [Parameter(k, value=v) for k, v in overrides.items()]
    with pytest.raises(RosError, match=rf"{parameter} needs {package}\..*robot's ROS 2 install"):
        SkillServerNode("robot_skill", context=context, parameter_overrides=params)


def test_perception_tf_needs_tf2(context):
    if not _absent("tf2_ros"):
        pytest.skip("tf2_ros is installed here")
    pytest.importorskip("open3d")
    from fmb_ros.perception_node import PerceptionNode

    params = [Parameter("publish_tf", value=True), Parameter("peg", value="peg_round_M_long")]
    with pytest.raises(RosError, match="publish_tf true needs tf2_ros.TransformBroadcaster"):
        PerceptionNode(context=context, parameter_overrides=params)


def test_bad_interface_names_are_listed(context):
    from fmb_core.errors import ParameterError
    from fmb_ros.skill_server import SkillServerNode

    for name, value, known in (
        ("gripper_interface", "suction", "topic, franka_action"),
        ("ik_solver", "trac_ik", "dls, mink"),
        ("command_interface", "torque", "cartesian, joint_trajectory, follow_joint_trajectory"),
    ):
        with pytest.raises(ParameterError, match=f"unknown {name} '{value}'; known: {known}"):
            SkillServerNode("bad", context=context, parameter_overrides=[Parameter(name, value=value)])


def test_start_runs_towards_the_perceived_target(context):
    """`~/start` needs a target_topic and a target on it; the target goes through the goal checks."""
    pytest.importorskip("mink")
    from fmb_ros import convert
    from fmb_ros.skill_server import SkillServerNode

    plain = SkillServerNode("plain_skill", context=context)
    try:
        response = plain.on_start(None, Trigger.Response())
        assert not response.success and "no target_topic set" in response.message
    finally:
        plain.destroy_node()
    params = [
        Parameter("target_topic", value="/fmb_perception/peg_pose"),
        Parameter("command_interface", value="joint_trajectory"),
        Parameter("ik_solver", value="mink"),
    ]
    node = SkillServerNode("perceiving_skill", context=context, parameter_overrides=params)
    try:
        assert type(node.world.kinematics).__name__ == "MinkKinematics"
        response = node.on_start(None, Trigger.Response())
        assert not response.success and "no target on /fmb_perception/peg_pose yet" in response.message
        node.on_target(convert.pose_stamped_msg([0.5, 0.0, 0.02, 0, 0, 0, 1], "map", 0.0))
        assert node.world.perceived["target"][:3].tolist() == [0.5, 0.0, 0.02]
        response = node.on_start(None, Trigger.Response())
        assert not response.success and "frame 'map' is unknown" in response.message
    finally:
        node.destroy_node()
