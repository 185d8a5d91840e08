"""Nodes built in-process (no other process): bad parameters, console scripts, the `fmb ros` command."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from rclpy.parameter import Parameter  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[2]


def test_missing_checkpoint_keeps_the_node_up_and_refuses_goals(context):
    from fmb_ros import convert
    from fmb_ros.skill_server import SkillServerNode

    overrides = [Parameter("checkpoint", value="/nonexistent/run")]
    node = SkillServerNode("bad_skill", context=context, parameter_overrides=overrides)
    try:
        assert node.run is None
        assert "no such checkpoint" in node.error and "/nonexistent/run" in node.error
        results = []
        node.publish_result = lambda level, state, message, goal_stamp=None: results.append((level, state, message))
        node.on_goal(convert.pose_stamped_msg([0.5, 0, 0.1, 0, 0, 0, 1], "panda_link0", 0.0))
        assert results and results[0][:2] == ("error", "rejected") and "no such checkpoint" in results[0][2]
        node.on_tick()  # still ticks, publishing an error status
    finally:
        node.destroy_node()


def test_bad_safety_limit_names_the_parameter(context):
    from fmb_core.errors import ParameterError
    from fmb_ros.skill_server import SkillServerNode

    with pytest.raises(ParameterError, match="max_step_translation"):
        SkillServerNode("bad", context=context, parameter_overrides=[Parameter("max_step_translation", value=3.0)])


def test_sim_node_refuses_a_bad_seed_at_run_time(context):
    from fmb_ros.sim_robot import SimRobotNode

    node = SimRobotNode(context=context)
    try:
        result = node.set_parameters([Parameter("seed", value=-1)])[0]
        assert not result.successful and "seed must be an integer >= 0" in result.reason
        assert node.set_parameters([Parameter("seed", value=5)])[0].successful
        assert not node.set_parameters([Parameter("task", value="insert")])[0].successful  # read-only
        response = node.on_reset(None, Trigger.Response())
        assert response.success and response.message.startswith("seed 5")
    finally:
        node.destroy_node()


def test_console_scripts_exist():
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts = next(
        ast.literal_eval(k.value)["console_scripts"]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup"
        for k in node.keywords
        if k.arg == "entry_points"
    )
    import importlib

    names = {}
    for line in scripts:
        name, target = (s.strip() for s in line.split("="))
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), line
        names[name] = module
    assert names["fmb_sim_robot"] == "fmb_ros.sim_robot" and names["fmb_skill_server"] == "fmb_ros.skill_server"


def test_fmb_ros_command_is_registered_and_checks_its_flags(capsys):
    from fmb.cli import main

    assert main(["ros", "up", "sim", "--real-time-factor", "0"]) == 2
    assert "--real-time-factor=0 is out of range" in capsys.readouterr().err
    assert main(["ros", "up", "sim", "--params-file", "/nonexistent.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_sim_robot_publishes_cameras_and_point_cloud(context):
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from fmb_ros import convert, qos
    from fmb_ros.sim_robot import SimRobotNode

    overrides = [
        Parameter("cameras", value=["side_1"]),
        Parameter("image_size", value=[64, 48]),
        Parameter("point_cloud", value=256),
        Parameter("real_time_factor", value=5.0),
    ]
    sim = SimRobotNode(context=context, parameter_overrides=overrides)
    client = rclpy.create_node("camera_client", context=context)
    got: dict = {}
    for topic, kind in (
        ("camera/side_1/image_raw", Image),
        ("camera/side_1/depth", Image),
        ("camera/side_1/camera_info", CameraInfo),
        ("points", PointCloud2),
        ("camera/side_1/refined_pose", PoseStamped),  # the pose the cloud was fused with (fmb_perception reads it)
    ):
        client.create_subscription(kind, topic, lambda m, t=topic: got.setdefault(t, m), qos.SENSOR)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(sim)
    executor.add_node(client)
    try:
        import time

        end = time.monotonic() + 20.0
        while len(got) < 5 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        assert len(got) == 5, sorted(got)
        rgb = convert.image_array(got["camera/side_1/image_raw"])
        depth = convert.image_array(got["camera/side_1/depth"])
        assert rgb.shape == (48, 64, 3) and depth.shape == (48, 64) and np.all(depth > 0)
        info = got["camera/side_1/camera_info"]
        assert (info.width, info.height) == (64, 48) and info.header.frame_id == "side_1_optical_frame"
        points = convert.point_cloud_array(got["points"])
        assert points.shape == (256, 6) and got["points"].header.frame_id == "panda_link0"
        from sim.limits import DEFAULT_WORKSPACE

        assert np.all(points[:, :3] >= np.array(DEFAULT_WORKSPACE.low) - 1e-5)
        refined, frame, _ = convert.pose_stamped_array(got["camera/side_1/refined_pose"])
        calibrated = sim.env.calibrated_camera_pose("side_1")
        assert frame == "panda_link0" and np.linalg.norm(refined[:3] - calibrated[:3]) < 0.01
    finally:
        executor.shutdown()
        client.destroy_node()
        sim.destroy_node()


def test_corrupt_checkpoint_keeps_the_node_up(context, tmp_path):
    from fmb_ros.skill_server import SkillServerNode

    bad = tmp_path / "run"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    overrides = [Parameter("checkpoint", value=str(bad))]
    node = SkillServerNode("corrupt_skill", context=context, parameter_overrides=overrides)
    try:
        assert node.run is None and str(bad) in node.error, node.error
    finally:
        node.destroy_node()
