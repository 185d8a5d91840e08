"""`fmb_recorder` over DDS on loopback: a scripted robot publishes its state, a camera and a
teleoperator's commands; the recorder's services start, keep and discard episodes in the store."""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float64  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402

from fmb_core.errors import ParameterError  # noqa: E402
from fmb_ros import convert, qos  # noqa: E402
from sim.panda import ARM_JOINTS, FINGER_JOINTS  # noqa: E402
from sim.store import EpisodeStore  # noqa: E402

pytestmark = pytest.mark.graph
POSE = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


class ScriptedRobot:
    """Publishes the robot's topics at 50 Hz (x grows 1 cm/s), a camera at 15 Hz (until `camera_on`
    is cleared) and the commands at 10 Hz (target 5 mm ahead; close after `close_at` [s])."""

    def __init__(self, context):
        self.node = node = rclpy.create_node("scripted_robot", context=context)
        self.t0, self.camera_on, self.close_at = time.monotonic(), True, 0.5
        pub = node.create_publisher
        self.pubs = {
            "joints": pub(JointState, "joint_states", qos.STATE),
            "pose": pub(PoseStamped, "tcp_pose", qos.STATE),
            "twist": pub(TwistStamped, "tcp_twist", qos.STATE),
            "wrench": pub(WrenchStamped, "wrench", qos.STATE),
            "gripper": pub(JointState, "gripper/joint_states", qos.STATE),
            "target": pub(PoseStamped, "equilibrium_pose", qos.COMMAND),
            "command": pub(Float64, "gripper/command", qos.COMMAND),
            "image": pub(Image, "camera/wrist/image_raw", qos.SENSOR),
        }
        node.create_timer(0.02, self.state)
        node.create_timer(0.1, self.command)
        node.create_timer(1 / 15, self.image)

    def pose(self) -> np.ndarray:
        p = POSE.copy()
        p[0] += 0.01 * (time.monotonic() - self.t0)
        return p

    def state(self):
        k, p = time.monotonic() - self.t0, self.pubs
        p["joints"].publish(convert.joint_state_msg(ARM_JOINTS, np.full(7, k), np.ones(7), seconds=k))
        p["pose"].publish(convert.pose_stamped_msg(self.pose(), "panda_link0", k))
        p["twist"].publish(convert.twist_msg([0.01, 0, 0, 0, 0, 0], "panda_link0", k))
        p["wrench"].publish(convert.wrench_msg([0, 0, -1.0, 0, 0, 0], "panda_hand_tcp", k))
        p["gripper"].publish(convert.joint_state_msg(FINGER_JOINTS, [0.04, 0.04], seconds=k))

    def command(self):
        target = self.pose()
        target[0] += 0.005
        self.pubs["target"].publish(convert.pose_stamped_msg(target, "panda_link0", 0.0))
        closed = time.monotonic() - self.t0 > self.close_at
        self.pubs["command"].publish(Float64(data=0.0 if closed else 0.08))

    def image(self):
        if self.camera_on:
            rgb = np.zeros((4, 6, 3), np.uint8)
            rgb[..., 0] = 200
            self.pubs["image"].publish(convert.image_msg(rgb, "wrist_optical_frame", 0.0))


def _spin(executor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)


def test_recorder_keeps_discards_and_cuts_at_a_stopped_camera(context, tmp_path):
    from fmb_ros.recorder_node import RecorderNode

    with pytest.raises(ParameterError, match="store is required"):
        RecorderNode(context=context)
    robot = ScriptedRobot(context)
    recorder = RecorderNode(
        context=context,
        parameter_overrides=[
            Parameter("store", value=str(tmp_path / "demos")),
            Parameter("task", value="insert"),
            Parameter("object", value="peg_round_M_long"),
            Parameter("cameras", value=["wrist"]),
        ],
    )
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(robot.node)
    executor.add_node(recorder)
    try:
        _spin(executor, 0.3)
        assert recorder.on_start(Trigger.Request(), Trigger.Response()).success
        assert not recorder.on_start(Trigger.Request(), Trigger.Response()).success  # already recording
        _spin(executor, 1.2)
        reply = recorder.on_stop(SetBool.Request(data=True), SetBool.Response())
        assert reply.success and "kept 1 episode" in reply.message, reply.message
        store = EpisodeStore.open(tmp_path / "demos/insert")
        ep = store.load(0)
        steps = len(ep.data["action"])
        assert 8 <= steps <= 13, steps
        assert ep.meta["success"] is True and ep.meta["object"] == "peg_round_M_long" and ep.meta["task"] == "insert"
        assert store.meta["source"] == "fmb_recorder" and store.meta["fps"] == 10.0
        d = ep.data
        assert d["obs/rgb/wrist"].shape == (steps, 4, 6, 3) and (d["obs/rgb/wrist"][..., 0] == 200).all()
        np.testing.assert_allclose(d["obs/gripper"], 0.08, atol=1e-6)
        np.testing.assert_allclose(d["obs/dq"], 1.0)
        assert np.all(np.abs(d["action"][:, 0] - 0.005) < 0.004), d["action"][:, 0]  # 5 mm ahead, +- a tick's motion
        assert d["action"][-1, 6] == 1.0  # closed by the end

        assert recorder.on_start(Trigger.Request(), Trigger.Response()).success
        _spin(executor, 0.5)
        assert recorder.on_discard(Trigger.Request(), Trigger.Response()).success
        assert not recorder.on_stop(SetBool.Request(data=True), SetBool.Response()).success  # nothing to stop
        assert len(store) == 1

        assert recorder.on_start(Trigger.Request(), Trigger.Response()).success
        _spin(executor, 0.6)
        robot.camera_on = False
        _spin(executor, 0.8)
        reply = recorder.on_stop(SetBool.Request(data=False), SetBool.Response())
        assert reply.success and "stale steps {" in reply.message and "'/camera/wrist/image_raw': " in reply.message
        cut = store.load(1)
        assert cut.meta["success"] is False and cut.meta["stale_steps"]["/camera/wrist/image_raw"] >= 4
        assert len(cut.data["action"]) <= 9  # the steps after the camera stopped are not kept
    finally:
        executor.shutdown()
        recorder.destroy_node()
        robot.node.destroy_node()


def test_recorder_records_the_point_cloud_resampled(context, tmp_path):
    """With `points` > 0 the fused cloud (PointCloud2, best effort as fmb_sim_robot sends it) is in
    every step, resampled to `points` by the rule `fmb data import-bag --points` uses."""
    from sensor_msgs.msg import PointCloud2

    from fmb_ros.recorder_node import RecorderNode
    from sim.recording import point_cloud

    robot = ScriptedRobot(context)
    rng = np.random.default_rng(0)
    cloud = np.concatenate([rng.uniform(0, 1, (300, 3)), rng.integers(0, 256, (300, 3)) / 255.0], axis=1)
    pub = robot.node.create_publisher(PointCloud2, "points", qos.SENSOR)
    robot.node.create_timer(0.1, lambda: pub.publish(convert.point_cloud_msg(cloud, "panda_link0", 0.0)))
    recorder = RecorderNode(
        context=context,
        parameter_overrides=[Parameter("store", value=str(tmp_path / "demos")), Parameter("points", value=64)],
    )
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(robot.node)
    executor.add_node(recorder)
    try:
        _spin(executor, 0.3)
        assert recorder.on_start(Trigger.Request(), Trigger.Response()).success
        _spin(executor, 1.0)
        reply = recorder.on_stop(SetBool.Request(data=True), SetBool.Response())
        assert reply.success, reply.message
        points = EpisodeStore.open(tmp_path / "demos/teleop").load(0).data["obs/points"]
        assert points.shape[1:] == (64, 6) and len(points) >= 5
        expected = point_cloud(convert.point_cloud_msg(cloud, "panda_link0", 0.0), 64)
        np.testing.assert_array_equal(points[0], expected)
    finally:
        executor.shutdown()
        recorder.destroy_node()
        robot.node.destroy_node()


class BagTap:
    """Writes every topic the recorder subscribes to into a rosbag2 (MCAP) as it arrives, serialized
    bytes untouched, with the node clock's receive time: what `ros2 bag record` beside the recorder
    would have captured. `on` gates the writing (the recording's start and stop)."""

    def __init__(self, context, topics, path):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        from fmb_ros.recorder_node import _message_class

        self.node = rclpy.create_node("bag_tap", context=context)
        self.typestore = get_typestore(Stores.ROS2_JAZZY)
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections, self.on = {}, False
        for stream in topics.streams():
            profile = qos.SENSOR if stream.msgtype.endswith(("/Image", "/PointCloud2")) else qos.STATE
            self.node.create_subscription(
                _message_class(stream.msgtype), stream.topic.lstrip("/"),
                lambda raw, s=stream: self.write(s, raw), profile, raw=True,
            )  # fmt: skip

    def write(self, stream, raw: bytes) -> None:
        if not self.on:
            return
        if stream.topic not in self.connections:
            self.connections[stream.topic] = self.writer.add_connection(
                stream.topic, stream.msgtype, typestore=self.typestore
            )
        self.writer.write(self.connections[stream.topic], self.node.get_clock().now().nanoseconds, raw)

    def close(self) -> None:
        self.writer.close()


def test_bag_import_agrees_with_the_live_recorder(context, tmp_path):
    """The same stream recorded live by `fmb_recorder` and captured into a bag beside it, then
    imported with `fmb data import-bag`'s core, gives the same episode: the same keys, shapes and
    dtypes, the same span of the robot's time (its joint positions count its seconds) give or take
    the two tick grids' phase, and in every row of both the values the scripted robot published
    together (pose x = 0.5 m + 1 cm/s, constant twist, wrench, gripper, image). The two paths
    convert messages differently (rclpy objects live, `rosbags` deserialization from the bag)."""
    from fmb_ros.recorder_node import RecorderNode
    from sim.datasets.rosbag import BagImportConfig, import_bags

    robot = ScriptedRobot(context)
    robot.close_at = 0.0  # the gripper commanded closed throughout
    recorder = RecorderNode(
        context=context,
        parameter_overrides=[
            Parameter("store", value=str(tmp_path / "live")),
            Parameter("task", value="insert"),
            Parameter("cameras", value=["wrist"]),
        ],
    )
    tap = BagTap(context, recorder.topics, tmp_path / "beside")
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    for node in (robot.node, recorder, tap.node):
        executor.add_node(node)
    try:
        _spin(executor, 0.3)
        tap.on = True
        assert recorder.on_start(Trigger.Request(), Trigger.Response()).success
        _spin(executor, 1.6)
        reply = recorder.on_stop(SetBool.Request(data=True), SetBool.Response())
        tap.on = False
        assert reply.success, reply.message
    finally:
        executor.shutdown()
        tap.close()
        for node in (recorder, tap.node, robot.node):
            node.destroy_node()
    live = EpisodeStore.open(tmp_path / "live/insert").load(0).data
    config = BagImportConfig(topics=recorder.topics, task="insert", min_steps=1)
    summary = import_bags([tmp_path / "beside"], tmp_path / "imported", config, progress=False)
    assert summary["new"] == 1, summary
    bagged = EpisodeStore.open(tmp_path / "imported").load(0).data
    assert live.keys() == bagged.keys()
    for key in live:
        assert live[key].shape[1:] == bagged[key].shape[1:] and live[key].dtype == bagged[key].dtype, key
    assert abs(len(live["action"]) - len(bagged["action"])) <= 2, (len(live["action"]), len(bagged["action"]))
    clock = {name: d["obs/q"][:, 0].astype(float) for name, d in (("live", live), ("bag", bagged))}
    assert abs(clock["live"][0] - clock["bag"][0]) < 0.25 and abs(clock["live"][-1] - clock["bag"][-1]) < 0.25, clock
    for name, d in (("live", live), ("bag", bagged)):
        k = clock[name]
        assert np.all(np.diff(k) > 0.05) and np.all(np.diff(k) < 0.15), (name, k)  # 10 Hz ticks
        np.testing.assert_allclose(d["obs/q"], np.repeat(k[:, None], 7, axis=1), atol=1e-6, err_msg=name)
        # pose and joints of one publish cycle, or of the next where a tick fell between them (20 ms at 1 cm/s)
        np.testing.assert_allclose(d["obs/tcp_pose"][:, 0], 0.5 + 0.01 * k, atol=2.5e-4, err_msg=name)
        np.testing.assert_allclose(d["obs/tcp_pose"][:, 1:], np.tile(POSE[1:], (len(k), 1)), atol=1e-6, err_msg=name)
        np.testing.assert_allclose(d["obs/tcp_vel"], np.tile([0.01, 0, 0, 0, 0, 0], (len(k), 1)), atol=1e-7)
        np.testing.assert_allclose(d["obs/wrench"], np.tile([0, 0, -1.0, 0, 0, 0], (len(k), 1)), atol=1e-7)
        np.testing.assert_allclose(d["obs/gripper"], 0.08, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(d["obs/dq"], 1.0, err_msg=name)
        assert (d["obs/rgb/wrist"][..., 0] == 200).all() and (d["obs/rgb/wrist"][..., 1:] == 0).all(), name
        assert np.all(np.abs(d["action"][:, 0] - 0.005) < 0.004), (name, d["action"][:, 0])
        np.testing.assert_array_equal(d["action"][:, 6], 1.0, err_msg=name)
