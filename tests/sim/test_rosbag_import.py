"""rosbag2 import: small real bags (MCAP and sqlite3) written with `rosbags`, imported through the
topic mapping and nearest-before alignment of sim.recording."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from scipy.spatial.transform import Rotation

from fmb.cli import main
from sim import recording
from sim.datasets.rosbag import BagImportConfig, import_bags
from sim.exceptions import DataFormatError
from sim.panda import ARM_JOINTS, FINGER_JOINTS
from sim.store import EpisodeStore

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
T0 = 1_000.0  # [s] bag start


def _header(t: float):
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int(round((t % 1) * 1e9))), frame_id="panda_link0"
    )


def _pose_msg(p, t):
    pose = T["geometry_msgs/msg/Pose"](
        position=T["geometry_msgs/msg/Point"](x=p[0], y=p[1], z=p[2]),
        orientation=T["geometry_msgs/msg/Quaternion"](x=p[3], y=p[4], z=p[5], w=p[6]),
    )
    return T["geometry_msgs/msg/PoseStamped"](header=_header(t), pose=pose)


def _vec3(v):
    return T["geometry_msgs/msg/Vector3"](x=v[0], y=v[1], z=v[2])


def _joint_msg(names, q, dq, t):
    return T["sensor_msgs/msg/JointState"](
        header=_header(t), name=list(names), position=np.asarray(q, float), velocity=np.asarray(dq, float),
        effort=np.zeros(0),
    )  # fmt: skip


def _image_msg(bgr, t):
    h, w, _ = bgr.shape
    return T["sensor_msgs/msg/Image"](
        header=_header(t), height=h, width=w, encoding="bgr8", is_bigendian=0, step=3 * w, data=bgr.reshape(-1)
    )


def tcp_at(t: float) -> np.ndarray:
    """The robot's TCP pose at time t [s]: 1 cm/s along x, turning 0.1 rad/s about z."""
    quat = (Rotation.from_euler("z", 0.1 * (t - T0)) * Rotation.from_euler("x", np.pi)).as_quat()
    return np.concatenate([[0.5 + 0.01 * (t - T0), 0.0, 0.3], quat])


def write_bag(path, storage="mcap", seconds=2.0, camera_stops=None, skip_topic=None):
    """A robot publishing its state at 50 Hz, a teleoperator commanding at 10 Hz (target 5 mm ahead
    in x, closing after 1 s) and a camera at 15 Hz (bgr8, 4x6 px), until `camera_stops` [s]."""
    conns = {}

    def write(topic, msgtype, msg, t):
        if topic == skip_topic:
            return
        if topic not in conns:
            conns[topic] = w.add_connection(topic, msgtype, typestore=TS)
        w.write(conns[topic], int(round(t * 1e9)), TS.serialize_cdr(msg, msgtype))

    events = []
    for t in np.arange(T0, T0 + seconds, 0.02):
        events.append((t, "state"))
    for t in np.arange(T0 + 0.005, T0 + seconds, 0.1):
        events.append((t, "command"))
    for t in np.arange(T0 + 0.011, T0 + seconds, 1 / 15):
        if camera_stops is None or t < T0 + camera_stops:
            events.append((t, "camera"))
    with Writer(path, version=9, storage_plugin=STORAGE[storage]) as w:
        for t, kind in sorted(events):
            if kind == "state":
                pose, k = tcp_at(t), t - T0
                write("/tcp_pose", "geometry_msgs/msg/PoseStamped", _pose_msg(pose, t), t)
                twist = T["geometry_msgs/msg/Twist"](linear=_vec3([0.01, 0, 0]), angular=_vec3([0, 0, 0.1]))
                write("/tcp_twist", "geometry_msgs/msg/TwistStamped",
                      T["geometry_msgs/msg/TwistStamped"](header=_header(t), twist=twist), t)  # fmt: skip
                wr = T["geometry_msgs/msg/Wrench"](force=_vec3([0, 0, -k]), torque=_vec3([0.1, 0, 0]))
                write("/wrench", "geometry_msgs/msg/WrenchStamped",
                      T["geometry_msgs/msg/WrenchStamped"](header=_header(t), wrench=wr), t)  # fmt: skip
                q = np.linspace(0, 0.6, 7) + k
                write("/joint_states", "sensor_msgs/msg/JointState", _joint_msg(ARM_JOINTS, q, q * 0 + 1, t), t)
                width = 0.08 if k < 1.05 else 0.03
                write("/gripper/joint_states", "sensor_msgs/msg/JointState",
                      _joint_msg(FINGER_JOINTS, [width / 2] * 2, [0, 0], t), t)  # fmt: skip
            elif kind == "command":
                target = tcp_at(t).copy()
                target[0] += 0.005
                write("/equilibrium_pose", "geometry_msgs/msg/PoseStamped", _pose_msg(target, t), t)
                write("/gripper/command", "std_msgs/msg/Float64",
                      T["std_msgs/msg/Float64"](data=0.08 if t - T0 < 1.0 else 0.0), t)  # fmt: skip
            else:
                frame = int(round((t - T0) * 15))
                bgr = np.zeros((4, 6, 3), np.uint8)
                bgr[..., 0], bgr[..., 2] = frame, 200  # blue = frame number, red = 200
                write("/camera/side_1/image_raw", "sensor_msgs/msg/Image", _image_msg(bgr, t), t)
    return path


CONFIG = BagImportConfig(topics=recording.TopicMap(cameras=("side_1",)), task="insert")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_round_trip_units_and_alignment(tmp_path, storage):
    bag = write_bag(tmp_path / f"demo_{storage}", storage)
    summary = import_bags([bag], tmp_path / "store", CONFIG, progress=False)
    assert summary["new"] == 1 and summary["bags"][0]["stale_steps"] == {}
    store = EpisodeStore.open(tmp_path / "store")
    assert store.meta["fps"] == 10 and store.meta["source"] == "rosbag" and store.meta["task"] == "insert"
    ep = store.load(0)
    d = ep.data
    steps = len(d["action"])
    assert steps == 20  # ticks from the first moment every topic has spoken (the camera, 11 ms) to 1.98 s
    ticks = T0 + 0.011 + np.arange(steps) / 10
    before = np.floor((ticks - T0) / 0.02 + 1e-6) * 0.02 + T0  # nearest-before state message
    np.testing.assert_allclose(d["obs/tcp_pose"], np.array([tcp_at(t) for t in before]), atol=1e-6)
    np.testing.assert_allclose(d["obs/q"][:, 0], before - T0, atol=1e-6)
    np.testing.assert_allclose(d["obs/dq"], 1.0)
    np.testing.assert_allclose(d["obs/wrench"][:, 2], -(before - T0), atol=1e-6)
    np.testing.assert_allclose(d["obs/gripper"][:, 0], np.where(before - T0 < 1.05, 0.08, 0.03), atol=1e-6)
    # action k: the command at or before tick k+1, relative to the pose measured at tick k
    commands = np.arange(T0 + 0.005, T0 + 2.0, 0.1)
    cmd_t = commands[np.searchsorted(commands, ticks + 0.1, side="right") - 1]  # the last one is held
    target = np.array([tcp_at(t) for t in cmd_t])
    np.testing.assert_allclose(d["action"][:, 0], target[:, 0] + 0.005 - d["obs/tcp_pose"][:, 0], atol=1e-6)
    rot = Rotation.from_rotvec(d["action"][:, 3:6]) * Rotation.from_quat(d["obs/tcp_pose"][:, 3:])
    np.testing.assert_allclose(rot.as_quat() * np.sign(rot.as_quat()[:, 3:]),
                               target[:, 3:] * np.sign(target[:, 3:4]), atol=1e-5)  # fmt: skip
    np.testing.assert_array_equal(d["action"][:, 6], (cmd_t - T0 >= 1.0).astype(np.float32))
    rgb = d["obs/rgb/side_1"]
    assert rgb.shape == (steps, 4, 6, 3) and (rgb[..., 0] == 200).all()  # bgr8 -> RGB
    assert ep.meta["bag"].endswith(f"demo_{storage}") and ep.meta["success"] is None
    again = import_bags([bag], tmp_path / "store", CONFIG, progress=False)
    assert again["new"] == 0 and again["episodes"] == 1  # a rerun resumes


def test_a_stopped_camera_is_counted_and_never_padded(tmp_path):
    bag = write_bag(tmp_path / "stops", camera_stops=1.0)
    summary = import_bags([bag], tmp_path / "store", CONFIG, progress=False)
    report = summary["bags"][0]
    assert report["stale_steps"] == {"/camera/side_1/image_raw": 9}  # ticks after 1.0 + tolerance
    ep = EpisodeStore.open(tmp_path / "store").load(0)
    assert ep.meta["bag_steps"] == [0, 11] and len(ep.data["action"]) == 11
    strict = BagImportConfig(topics=CONFIG.topics, on_stale="error")
    with pytest.raises(DataFormatError, match=r"stale data .* \{'/camera/side_1/image_raw': 9\}"):
        import_bags([bag], tmp_path / "strict", strict, progress=False)


def test_missing_topic_names_bag_and_topic(tmp_path, capsys):
    bag = write_bag(tmp_path / "nowrench", skip_topic="/wrench")
    with pytest.raises(DataFormatError, match=r"nowrench: missing topic '/wrench' \(geometry_msgs/msg/WrenchStamped\)"):
        import_bags([bag], tmp_path / "s", CONFIG, progress=False)
    assert main(["data", "import-bag", str(bag), "--out", str(tmp_path / "s2"), "--quiet"]) == 2
    assert "missing topic '/wrench'" in capsys.readouterr().err
    good = write_bag(tmp_path / "good", "sqlite3")
    out = tmp_path / "s3"
    code = main(
        ["data", "import-bag", str(good), "--out", str(out), "--cameras", "side_1", "--task", "grasp", "--quiet"]
    )
    assert code == 0 and EpisodeStore.open(out).meta["task"] == "grasp"


def test_topic_defaults_are_the_stacks_own():
    from fmb_ros.skill_params import PARAMETERS

    topics = recording.TopicMap()
    for field in ("joint_states", "tcp_pose", "tcp_twist", "wrench", "equilibrium_pose", "gripper_command"):
        assert getattr(topics, field) == PARAMETERS[f"{field}_topic"][0]
    assert topics.gripper_state == PARAMETERS["gripper_state_topic"][0]


def test_align_nearest_before_within_tolerance():
    index, stale = recording.align(np.array([0.0, 0.1, 0.5]), np.array([-0.1, 0.05, 0.2, 0.3, 0.5]), 0.15)
    assert index.tolist() == [-1, 0, 1, -1, 2] and stale.tolist() == [True, False, False, True, False]
    assert recording.valid_runs(np.array([0, 0, 1, 0, 1, 0, 0, 0], bool), min_steps=2) == [(0, 2), (5, 8)]
