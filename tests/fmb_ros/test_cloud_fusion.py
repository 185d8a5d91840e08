"""`fmb_cloud_fusion` on the simulated robot's cameras over DDS on loopback: the calibration it reads,
the hand-eye refinement it applies, the cloud it publishes."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402

from fmb_core.errors import ParameterError  # noqa: E402
from fmb_ros import convert, qos  # noqa: E402


def _table_error_mm(env, camera: str, pose) -> float:
    """How far `pose` of `camera` puts the table centre from where its true pose does [mm]."""
    from sim.perception.hand_eye import table_centre
    from sim.perception.models import pose_to_matrix

    spec = {c.name: c for c in env.config.camera_specs()}[camera]
    p = np.r_[table_centre(env.config.workspace), 1.0]
    T = pose_to_matrix(pose) @ np.linalg.inv(pose_to_matrix(env.backend.camera_pose(spec)))
    return float(np.linalg.norm((T @ p)[:3] - p[:3])) * 1e3


@pytest.mark.slow
def test_fusion_refines_the_sim_robots_cameras_on_the_hand(context):
    from fmb_ros.cloud_fusion_node import CloudFusionNode
    from fmb_ros.sim_robot import SimRobotNode

    cameras = ["side_1", "side_2"]
    sim = SimRobotNode(
        context=context,
        parameter_overrides=[
            Parameter("task", value="insert"),
            Parameter("cameras", value=cameras),
            Parameter("image_size", value=[256, 256]),
            Parameter("sensor", value="default"),
            Parameter("real_time_factor", value=0.5),
        ],
    )
    fusion = CloudFusionNode(
        context=context, parameter_overrides=[Parameter("rate", value=4.0), Parameter("points", value=5000)]
    )
    client = rclpy.create_node("fusion_client", context=context)
    got: dict[str, list] = {"points": [], "status": [], **{c: [] for c in cameras}}
    client.create_subscription(PointCloud2, "points", got["points"].append, qos.SENSOR)
    client.create_subscription(DiagnosticStatus, "/fmb_cloud_fusion/status", got["status"].append, qos.STATE)
    for cam in cameras:
        client.create_subscription(PoseStamped, f"camera/{cam}/refined_pose", got[cam].append, qos.STATE)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    for node in (sim, fusion, client):
        executor.add_node(node)
    try:

        def fused() -> bool:
            return (
                bool(got["points"])
                and all(got[c] for c in cameras)
                and any(s.message in ("fused",) or s.message.startswith("kept") for s in got["status"])
            )

        end = time.monotonic() + 60.0
        while not fused() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        assert fused(), [s.message for s in got["status"][-3:]]
        values = convert.status_values(next(s for s in got["status"] if s.message == "fused"))
        for cam in cameras:
            assert values[f"{cam}_applied"] == "true", values
            calibrated = sim.env.calibrated_camera_pose(cam)
            refined, frame, _ = convert.pose_stamped_array(got[cam][-1])
            assert frame == "panda_link0"
            before, after = _table_error_mm(sim.env, cam, calibrated), _table_error_mm(sim.env, cam, refined)
            assert after < 0.5 * before and after < 1.0, (cam, before, after)
        cloud = convert.point_cloud_array(got["points"][-1])
        assert cloud.shape == (5000, 6) and got["points"][-1].header.frame_id == "panda_link0"
    finally:
        executor.shutdown()
        for node in (client, fusion, sim):
            node.destroy_node()


def test_fusion_waits_for_what_it_lacks_and_names_bad_parameters(context):
    from fmb_ros.cloud_fusion_node import CloudFusionNode

    with pytest.raises(ParameterError, match="camera_poses has 3 values; 2 cameras need 14"):
        CloudFusionNode(context=context, parameter_overrides=[Parameter("camera_poses", value=[0.1, 0.2, 0.3])])
    with pytest.raises(ParameterError, match="not unit length"):
        CloudFusionNode(
            context=context,
            parameter_overrides=[Parameter("cameras", value=["side_1"]), Parameter("camera_poses", value=[0.0] * 7)],
        )
    node = CloudFusionNode(context=context, parameter_overrides=[Parameter("cameras", value=["side_1"])])
    client = rclpy.create_node("fusion_status", context=context)
    status: list = []
    client.create_subscription(DiagnosticStatus, "/fmb_cloud_fusion/status", status.append, qos.STATE)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(client)
    try:
        end = time.monotonic() + 10.0
        while not status and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        assert status and status[-1].level == DiagnosticStatus.WARN
        for what in ("side_1 depth", "side_1 camera_info", "side_1 calibration", "tcp pose", "gripper state"):
            assert what in status[-1].message, status[-1].message
    finally:
        executor.shutdown()
        client.destroy_node()
        node.destroy_node()


def test_realsense_depth_in_millimetres_reads_as_metres():
    from sensor_msgs.msg import Image

    from fmb_ros.cloud_fusion_node import depth_metres

    mm = np.array([[0, 600], [1250, 65535]], dtype="<u2")
    msg = Image(height=2, width=2, encoding="16UC1", is_bigendian=0, step=4, data=mm.tobytes())
    assert np.allclose(depth_metres(msg), [[0.0, 0.6], [1.25, 65.535]])
    assert depth_metres(msg).dtype == np.float32
    metres = convert.image_msg(np.array([[0.5, np.nan]], np.float32), "cam", 0.0)
    assert np.array_equal(depth_metres(metres), [[0.5, 0.0]])  # NaN: no return
