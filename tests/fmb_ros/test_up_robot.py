"""`fmb ros up robot` without a robot: the nodes of launch/robot.launch.py start from robot.yaml, say
what they wait for (the driver's and the camera's topics), and notice when those appear over DDS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
pytest.importorskip("open3d", reason="robot.yaml starts fmb_perception: pip install -e .[perception]")

from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2  # noqa: E402

from fmb_ros import qos  # noqa: E402
from tests.fmb_ros.dds import ros_domain_id  # noqa: E402

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[2]
DRIVER = "/franka_robot_state_broadcaster"
INPUTS = {
    f"{DRIVER}/current_pose": (PoseStamped, qos.STATE),
    f"{DRIVER}/measured_joint_states": (JointState, qos.STATE),
    f"{DRIVER}/desired_end_effector_twist": (TwistStamped, qos.STATE),
    f"{DRIVER}/external_wrench_in_stiffness_frame": (WrenchStamped, qos.STATE),
    "/franka_gripper/joint_states": (JointState, qos.STATE),
    "/camera/points": (PointCloud2, qos.SENSOR),
    # fmb_perception's depth views (the held peg's tip by free space): the cameras' aligned depth, and
    # each camera's pose refined on the hand from fmb_cloud_fusion
    **{f"/camera/{cam}/aligned_depth_to_color/image_raw": (Image, qos.SENSOR) for cam in ("side_1", "side_2")},
    **{f"/camera/{cam}/aligned_depth_to_color/camera_info": (CameraInfo, qos.SENSOR) for cam in ("side_1", "side_2")},
    **{f"/camera/{cam}/refined_pose": (PoseStamped, qos.STATE) for cam in ("side_1", "side_2")},
}


def _wait_for(log: Path, text: str, proc, timeout: float) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = log.read_text()
        if text in out:
            return out
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not printed within {timeout:g} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_up_robot_reports_what_it_waits_for(tmp_path):
    domain = ros_domain_id()
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        ROS_LOG_DIR=str(tmp_path),
    )
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fmb", "ros", "up", "robot", "--duration", "60"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("fake_driver", context=ctx)
    try:
        text = _wait_for(log, "waiting for", proc, 40.0)
        text = _wait_for(log, "(fmb_perception)", proc, 10.0)
        assert "skills grasp, perception (no simulator)" in text
        for topic in INPUTS:
            assert topic in text, topic
        assert "/grasp_skill/goal" not in text  # a user's input, not awaited
        assert "cannot run skill 'grasp': runs/grasp_dp: no such checkpoint" in text  # and it says why
        # The driver and the camera come up: the watcher says so.
        publishers = [node.create_publisher(t, name, q) for name, (t, q) in INPUTS.items()]
        _wait_for(log, "all inputs have publishers", proc, 30.0)
        assert proc.poll() is None, "fmb ros up robot exited"
        del publishers
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
    assert proc.returncode in (0, -signal.SIGINT), log.read_text()[-3000:]
