"""Message conversions: round trips and error paths (message types only, no ROS graph)."""

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from fmb_ros import convert  # noqa: E402
from fmb_ros.exceptions import ConversionError  # noqa: E402


def test_stamp_round_trip():
    msg = convert.to_stamp(12.345678901)
    assert msg.sec == 12 and msg.nanosec == 345678901
    assert convert.from_stamp(msg) == pytest.approx(12.345678901, abs=1e-9)


def test_pose_stamped_round_trip_keeps_xyzw_order():
    pose = np.array([0.5, -0.1, 0.3, 0.0, 0.0, 0.38268343, 0.92387953])
    msg = convert.pose_stamped_msg(pose, "panda_link0", 3.5)
    assert msg.pose.orientation.w == pytest.approx(0.92387953)
    back, frame, t = convert.pose_stamped_array(msg)
    assert np.allclose(back, pose) and frame == "panda_link0" and t == pytest.approx(3.5)


def test_pose_array_round_trip():
    poses = np.array([[0.1, 0.2, 0.3, 0, 0, 0, 1], [0.4, 0.5, 0.6, 1, 0, 0, 0]], float)
    assert np.allclose(convert.pose_array_arrays(convert.pose_array_msg(poses, "base", 0.0)), poses)


def test_pose_of_wrong_size_is_an_error():
    with pytest.raises(ConversionError, match="pose must have 7 values, got 6"):
        convert.pose_msg(np.zeros(6))


def test_joint_state_round_trip_picks_joints_by_name():
    msg = convert.joint_state_msg(["a", "b", "c"], [1.0, 2.0, 3.0], [0.1, 0.2, 0.3], seconds=1.0)
    q, dq = convert.joint_state_arrays(msg, ["c", "a"])
    assert np.allclose(q, [3.0, 1.0]) and np.allclose(dq, [0.3, 0.1])
    with pytest.raises(ConversionError, match="lacks joints"):
        convert.joint_state_arrays(JointState(name=["a"], position=[0.0]), ["a", "z"])


def test_wrench_and_twist_round_trip():
    w = np.arange(6.0) - 2.5
    assert np.allclose(convert.wrench_array(convert.wrench_msg(w, "tcp", 0.0)), w)
    assert np.allclose(convert.twist_array(convert.twist_msg(w, "base", 0.0)), w)


def test_point_cloud_round_trip_packs_rgb():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(-1, 1, (50, 3)), rng.integers(0, 256, (50, 3)) / 255.0], axis=1)
    msg = convert.point_cloud_msg(pts, "panda_link0", 0.0)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"] and msg.width == 50 and msg.point_step == 16
    back = convert.point_cloud_array(msg)
    assert back.dtype == np.float32 and back.shape == (50, 6)
    assert np.allclose(back[:, :3], pts[:, :3], atol=1e-6)
    assert np.allclose(back[:, 3:], pts[:, 3:], atol=1e-6)
    # A red point is 0x00FF0000 in the rgb field, as RViz reads it.
    red = convert.point_cloud_msg(np.array([[0, 0, 0, 1.0, 0, 0]]), "f", 0.0)
    assert np.frombuffer(bytes(red.data), "<u4")[3] == 0xFF0000


def test_point_cloud_of_wrong_shape_is_an_error():
    with pytest.raises(ConversionError, match=r"\(N, 6\)"):
        convert.point_cloud_msg(np.zeros((4, 3)), "f", 0.0)


def test_images_round_trip():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    depth = np.linspace(0.1, 2.0, 20, dtype=np.float32).reshape(4, 5)
    m = convert.image_msg(rgb, "cam", 0.0)
    assert m.encoding == "rgb8" and m.step == 15
    assert np.array_equal(convert.image_array(m), rgb)
    d = convert.image_msg(depth, "cam", 0.0)
    assert d.encoding == "32FC1"
    assert np.array_equal(convert.image_array(d), depth)
    with pytest.raises(ConversionError, match="uint8"):
        convert.image_msg(np.zeros((4, 5, 3), np.float64), "cam", 0.0)


def test_camera_info_matches_the_simulators_projection():
    info = convert.camera_info_msg(128, 96, 58.0, "side_1_optical_frame", 0.0)
    f = 0.5 * 96 / np.tan(np.radians(58.0) / 2)  # as sim.pointcloud.camera_points
    assert info.k[0] == pytest.approx(f) and info.k[4] == pytest.approx(f)
    # sim puts a pixel's centre at u + 0.5 and the optical axis at w / 2: integer pixel u = cx on the axis.
    assert info.k[2] == pytest.approx(63.5) and info.k[5] == pytest.approx(47.5)


def test_status_values():
    msg = convert.status_msg("skill", "warn", "holding", {"state": "running", "step": 3, "score": 0.25, "ok": True})
    assert msg.level == DiagnosticStatus.WARN
    assert convert.status_values(msg) == {"state": "running", "step": "3", "score": "0.25", "ok": "true"}


def test_json_of_numpy_values():
    assert convert.to_json({"a": np.arange(2), "b": np.float32(0.5)}) == '{"a":[0,1],"b":0.5}'
