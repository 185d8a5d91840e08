"""sim.recording's point cloud stream: PointCloud2 -> (N, 6) obs/points, as rosbags and rclpy both give it."""

import numpy as np
import pytest

pytest.importorskip("rosbags", reason="the bag import needs rosbags (the sim extra)")

from rosbags.typesys import Stores, get_typestore  # noqa: E402

from sim import recording  # noqa: E402
from sim.exceptions import DataFormatError  # noqa: E402

T = get_typestore(Stores.ROS2_JAZZY).types


def cloud_msg(points: np.ndarray, extra_field: bool = False):
    """A rosbags PointCloud2 of (N, 6) points: float32 x, y, z and packed 0x00RRGGBB rgb (16 bytes a
    point, as fmb_sim_robot publishes it; `extra_field`: a RealSense-like 20-byte point with a pad)."""
    step = 20 if extra_field else 16
    dtype = np.dtype({"names": ["x", "y", "z", "rgb"], "formats": ["<f4"] * 3 + ["<u4"],
                      "offsets": [0, 4, 8, 16 if extra_field else 12], "itemsize": step})  # fmt: skip
    data = np.zeros(len(points), dtype)
    data["x"], data["y"], data["z"] = points[:, 0], points[:, 1], points[:, 2]
    rgb = np.round(points[:, 3:] * 255).astype(np.uint32)
    data["rgb"] = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    PF = T["sensor_msgs/msg/PointField"]
    offsets = {"x": 0, "y": 4, "z": 8, "rgb": 16 if extra_field else 12}
    fields = [PF(name=k, offset=o, datatype=7, count=1) for k, o in offsets.items()]
    stamp = T["builtin_interfaces/msg/Time"](sec=1, nanosec=0)
    return T["sensor_msgs/msg/PointCloud2"](
        header=T["std_msgs/msg/Header"](stamp=stamp, frame_id="panda_link0"), height=1, width=len(points),
        fields=fields, is_bigendian=False, point_step=step, row_step=step * len(points),
        data=np.frombuffer(data.tobytes(), np.uint8), is_dense=False,
    )  # fmt: skip


def _points(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(-1, 1, (n, 3)), rng.integers(0, 256, (n, 3)) / 255.0], axis=1)


def test_a_cloud_is_read_in_our_units_and_resampled_to_the_count():
    pts = _points(100)
    pts[7, 2] = np.nan  # dropped
    out = recording.point_cloud(cloud_msg(pts), count=32)
    assert out.shape == (32, 6) and out.dtype == np.float32
    finite = np.delete(pts, 7, axis=0).astype(np.float32)
    rows = [int(np.argmin(np.abs(finite - p).sum(axis=1))) for p in out]
    assert len(set(rows)) == 32  # a subset without repeats
    np.testing.assert_allclose(out, finite[rows], atol=1e-6)
    np.testing.assert_array_equal(out, recording.point_cloud(cloud_msg(pts, extra_field=True), count=32))
    np.testing.assert_array_equal(out, recording.point_cloud(cloud_msg(pts), count=32))  # the same choice again
    few = recording.point_cloud(cloud_msg(pts[:5]), count=32)  # fewer: all of them, then repeats
    np.testing.assert_allclose(few[:5], pts[:5].astype(np.float32), atol=1e-6)
    assert few.shape == (32, 6) and all(any(np.array_equal(p, q) for q in few[:5]) for p in few[5:])


def test_the_rclpy_message_gives_the_same_points():
    pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from fmb_ros.convert import point_cloud_msg

    pts = _points(50)
    ours = recording.point_cloud(point_cloud_msg(pts, "panda_link0", 1.0), count=20)
    np.testing.assert_array_equal(ours, recording.point_cloud(cloud_msg(pts), count=20))


def test_bad_clouds_are_named_and_the_stream_is_mapped():
    pts = _points(5)
    msg = cloud_msg(pts)
    msg.fields = msg.fields[:3]
    with pytest.raises(DataFormatError, match="float32 fields x, y, z, rgb"):
        recording.point_cloud(msg, count=4)
    with pytest.raises(DataFormatError, match="no finite point"):
        pts[:, :3] = np.nan
        recording.point_cloud(cloud_msg(pts), count=4)
    streams = {s.key: s for s in recording.TopicMap(point_count=4096).streams()}
    assert streams["obs/points"].topic == "/points" and streams["obs/points"].msgtype == "sensor_msgs/msg/PointCloud2"
    assert "obs/points" not in {s.key for s in recording.TopicMap().streams()}
