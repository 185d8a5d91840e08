"""Recording a robot's ROS topics as episodes: which topic fills which episode key, and how the
streams are aligned in time at the control rate. One definition for `fmb data import-bag`
(`sim.datasets.rosbag`) and the recorder node of issue 17; ROS-free (messages are read by attribute,
so rclpy's messages and `rosbags`' deserialised ones both work).

    topics = TopicMap(cameras=("side_1",))
    for stream in topics.streams():            # Stream(key, topic, msgtype, required, convert)
        value = stream.convert(msg)            # -> numpy array in our units (`sim.observation`)
    index, stale = align(times, ticks, tolerance)   # nearest-before within `tolerance` [s]

Topic -> episode key (defaults are the stack's own topic names, `fmb_ros.skill_params`):
    joint_states          sensor_msgs/JointState   obs/q, obs/dq (panda_joint1..7) [rad, rad/s]
    tcp_pose              geometry_msgs/PoseStamped   obs/tcp_pose [m, xyzw], base frame
    tcp_twist             geometry_msgs/TwistStamped  obs/tcp_vel [m/s, rad/s], base frame
    wrench                geometry_msgs/WrenchStamped obs/wrench [N, N m], TCP frame
    gripper/joint_states  sensor_msgs/JointState   obs/gripper: sum of the two finger joints [m]
    camera/<cam>/image_raw  sensor_msgs/Image (rgb8, bgr8)      obs/rgb/<cam> uint8
    camera/<cam>/depth      sensor_msgs/Image (32FC1 m, 16UC1 mm) obs/depth/<cam> float32 [m]
    points                sensor_msgs/PointCloud2  obs/points (N, 6) float32 xyz [m] + rgb [0, 1], base frame
                          (`point_count` N > 0; each cloud resampled to N points, see `point_cloud`)
    equilibrium_pose      geometry_msgs/PoseStamped   the commanded target -> action[:6]
    gripper/command       std_msgs/Float64         the commanded opening [m] -> action[6] (1 = close)

Time alignment (`align`): control ticks every 1/rate s; each stream contributes its newest message
at or before the tick (nearest-before), if that message is at most `tolerance` old; otherwise the
stream is stale at that tick, which is an error for that step (counted per stream; such a step is
never filled with older data). The action of step k is the newest command at or before tick k+1
(what the controller was told to do during the step), as the delta from the measured pose at tick k:
translation [m] and rotation vector [rad] of target * measured^-1, base frame (`sim.limits`' step).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError, check_range
from sim import observation as ob
from sim.exceptions import DataFormatError
from sim.panda import ARM_JOINTS, FINGER_JOINTS, GRIPPER_OPEN

COMMAND = "command/pose"
"""Internal key of the commanded target pose (7,) [m, xyzw], base frame."""
GRIPPER_COMMAND = "command/gripper"
"""Internal key of the commanded finger opening (1,) [m]."""
CLOSE_BELOW = GRIPPER_OPEN / 2
"""A commanded opening below this [m] closes the gripper (as `fmb_ros.sim_robot` reads it)."""


class Stream(NamedTuple):
    """One recorded topic: its episode key, ROS type, whether an episode needs it, and its converter."""

    key: str
    topic: str
    msgtype: str
    required: bool
    convert: Callable


@dataclasses.dataclass(frozen=True)
class TopicMap:
    """Topics to record (names relative to `namespace`; "" leaves a topic out).

    Attributes:
        joint_states, tcp_pose, tcp_twist, wrench, gripper_state: the robot's state topics.
        equilibrium_pose, gripper_command: the commanded target and finger opening (the action).
        camera_namespace: prefix of each camera's topics, <ns>/<cam>/<rgb_topic> and <ns>/<cam>/<depth_topic>.
        rgb_topic, depth_topic: each camera's colour and depth image topics under <ns>/<cam>/
            (realsense2_camera: "color/image_raw", "aligned_depth_to_color/image_raw").
        cameras: cameras whose colour images to record.
        depth: also record their depth images.
        points: the fused point cloud's topic (in the base frame, as `fmb_sim_robot` publishes it).
        point_count: points per recorded cloud (each resampled to it; 0 = the cloud is not recorded).
        namespace: prefix of every topic ("" = none; "/robot1" -> "/robot1/tcp_pose").
    """

    joint_states: str = "joint_states"
    tcp_pose: str = "tcp_pose"
    tcp_twist: str = "tcp_twist"
    wrench: str = "wrench"
    gripper_state: str = "gripper/joint_states"
    equilibrium_pose: str = "equilibrium_pose"
    gripper_command: str = "gripper/command"
    camera_namespace: str = "camera"
    rgb_topic: str = "image_raw"
    depth_topic: str = "depth"
    cameras: tuple[str, ...] = ()
    depth: bool = False
    points: str = "points"
    point_count: int = 0
    namespace: str = ""

    def __post_init__(self):
        check_range("point_count", self.point_count, 0, 1_000_000)

    def topic(self, name: str) -> str:
        """The absolute topic name of `name` ("tcp_pose" -> "/tcp_pose")."""
        return "/" + "/".join(p.strip("/") for p in (self.namespace, name) if p.strip("/"))

    def streams(self) -> list[Stream]:
        """Every stream to record, robot state and commands first."""
        t = self.topic
        out = [
            Stream(ob.store_key(ob.Q), t(self.joint_states), "sensor_msgs/msg/JointState", True, arm_joints),
            Stream(ob.store_key(ob.TCP_POSE), t(self.tcp_pose), "geometry_msgs/msg/PoseStamped", True, pose),
            Stream(ob.store_key(ob.TCP_VEL), t(self.tcp_twist), "geometry_msgs/msg/TwistStamped", True, twist),
            Stream(ob.store_key(ob.WRENCH), t(self.wrench), "geometry_msgs/msg/WrenchStamped", True, wrench),
            Stream(ob.store_key(ob.GRIPPER), t(self.gripper_state), "sensor_msgs/msg/JointState", True, finger_width),
            Stream(COMMAND, t(self.equilibrium_pose), "geometry_msgs/msg/PoseStamped", True, pose),
            Stream(GRIPPER_COMMAND, t(self.gripper_command), "std_msgs/msg/Float64", True, float_data),
        ]
        for cam in self.cameras:
            ns = f"{self.camera_namespace}/{cam}"
            out.append(Stream(ob.store_key(ob.rgb_key(cam)), t(f"{ns}/{self.rgb_topic}"),
                              "sensor_msgs/msg/Image", True, rgb_image))  # fmt: skip
            if self.depth:
                out.append(Stream(ob.store_key(ob.depth_key(cam)), t(f"{ns}/{self.depth_topic}"),
                                  "sensor_msgs/msg/Image", True, depth_image))  # fmt: skip
        if self.point_count:
            cloud = functools.partial(point_cloud, count=int(self.point_count))
            out.append(Stream(ob.store_key(ob.POINTS), t(self.points), "sensor_msgs/msg/PointCloud2", True, cloud))
        return [s for s in out if s.topic != "/"]


# -- message -> array (attribute access only) --------------------------------------------------
def stamp_seconds(msg) -> float | None:
    """header.stamp [s] of a stamped message; None when it has no header or a zero stamp."""
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if stamp is None:
        return None
    seconds = stamp.sec + stamp.nanosec * 1e-9
    return seconds if seconds > 0 else None


def pose(msg) -> np.ndarray:
    """(7,) position [m] + quaternion xyzw of a PoseStamped."""
    p, q = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])


def twist(msg) -> np.ndarray:
    """(6,) linear [m/s] + angular [rad/s] of a TwistStamped."""
    lin, ang = msg.twist.linear, msg.twist.angular
    return np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z])


def wrench(msg) -> np.ndarray:
    """(6,) force [N] + torque [N m] of a WrenchStamped."""
    f, t = msg.wrench.force, msg.wrench.torque
    return np.array([f.x, f.y, f.z, t.x, t.y, t.z])


def _joints(msg, names) -> tuple[np.ndarray, np.ndarray]:
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise DataFormatError(f"JointState lacks joints {missing}; it has {list(msg.name)}")
    rows = [index[n] for n in names]
    position = np.asarray(msg.position, dtype=np.float64)[rows]
    velocity = np.asarray(msg.velocity, dtype=np.float64)
    return position, (velocity[rows] if len(velocity) == len(msg.name) else np.zeros(len(rows)))


def arm_joints(msg) -> np.ndarray:
    """(14,) positions [rad] then velocities [rad/s] of panda_joint1..7 (split into obs/q, obs/dq)."""
    return np.concatenate(_joints(msg, ARM_JOINTS))


def finger_width(msg) -> np.ndarray:
    """(1,) finger opening [m]: the sum of the two finger joints."""
    return np.array([_joints(msg, FINGER_JOINTS)[0].sum()])


def float_data(msg) -> np.ndarray:
    return np.array([float(msg.data)])


def image(msg) -> np.ndarray:
    """An Image's array: rgb8/bgr8 -> (H, W, 3) uint8 RGB; 32FC1 -> (H, W) float32 [m]; 16UC1 -> [mm] uint16."""
    data = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    width = msg.width
    if msg.encoding in ("rgb8", "bgr8"):
        rgb = data[:, : 3 * width].reshape(msg.height, width, 3)
        return np.ascontiguousarray(rgb[..., ::-1] if msg.encoding == "bgr8" else rgb)
    big = ">" if msg.is_bigendian else "<"
    if msg.encoding == "32FC1":
        return data[:, : 4 * width].copy().view(big + "f4").reshape(msg.height, width).astype(np.float32)
    if msg.encoding in ("16UC1", "mono16"):
        return data[:, : 2 * width].copy().view(big + "u2").reshape(msg.height, width).astype(np.uint16)
    raise DataFormatError(f"image encoding {msg.encoding!r} is not supported; known: rgb8, bgr8, 32FC1, 16UC1")


def rgb_image(msg) -> np.ndarray:
    a = image(msg)
    if a.ndim != 3:
        raise DataFormatError(f"colour image has encoding {msg.encoding!r}; expected rgb8 or bgr8")
    return a


def depth_image(msg) -> np.ndarray:
    """(H, W) float32 depth [m] (16UC1 is read as millimetres, a RealSense's unit)."""
    a = image(msg)
    if a.ndim != 2:
        raise DataFormatError(f"depth image has encoding {msg.encoding!r}; expected 32FC1 or 16UC1")
    return (a * 1e-3).astype(np.float32) if a.dtype == np.uint16 else a


_FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32


def point_cloud(msg, count: int) -> np.ndarray:
    """(count, 6) float32 points of a PointCloud2 with float32 x, y, z and packed rgb (0x00RRGGBB,
    the layout `fmb_sim_robot` and RealSense publish): xyz [m], rgb in [0, 1]. Non-finite points are
    dropped, then the cloud is resampled to `count` points: a subset without repeats when it has
    more, all of them plus repeats when fewer; the choice depends only on the message's size (seed
    0), so the recorder and the bag import give the same points."""
    fields = {f.name: f for f in msg.fields}
    for name in ("x", "y", "z", "rgb"):
        if name not in fields or fields[name].datatype != _FLOAT32:
            have = [(f.name, f.datatype) for f in msg.fields]
            raise DataFormatError(f"PointCloud2 needs float32 fields x, y, z, rgb; it has {have}")
    if msg.is_bigendian:
        raise DataFormatError("big-endian PointCloud2 is not supported")
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "rgb"],
            "formats": ["<f4"] * 3 + ["<u4"],
            "offsets": [fields[k].offset for k in ("x", "y", "z", "rgb")],
            "itemsize": msg.point_step,
        }
    )
    raw = np.frombuffer(bytes(msg.data), dtype=dtype, count=msg.width * msg.height)
    xyz = np.stack([raw["x"], raw["y"], raw["z"]], axis=1)
    keep = np.all(np.isfinite(xyz), axis=1)
    if not keep.any():
        raise DataFormatError(f"PointCloud2 has no finite point ({len(raw)} points)")
    rgb = np.stack([(raw["rgb"][keep] >> s) & 0xFF for s in (16, 8, 0)], axis=1) / 255.0
    points = np.concatenate([xyz[keep], rgb], axis=1).astype(np.float32)
    n = len(points)
    rng = np.random.default_rng(0)
    if n >= count:
        rows = np.sort(rng.choice(n, count, replace=False))
    else:
        rows = np.concatenate([np.arange(n), rng.choice(n, count - n, replace=True)])
    return points[rows]


# -- time alignment ------------------------------------------------------------------------------
def control_ticks(first: float, last: float, rate: float) -> np.ndarray:
    """(T,) tick times [s] every 1/rate from `first` up to `last` (both [s])."""
    check_range("rate", rate, 0.1, 1000.0, unit="Hz")
    if last < first:
        return np.zeros(0)
    return first + np.arange(int(np.floor((last - first) * rate + 1e-9)) + 1) / rate


def align(times: np.ndarray, ticks: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-before alignment of one stream to the control ticks.

    Args:
        times: (M,) ascending message times [s].
        ticks: (T,) control tick times [s].
        tolerance: largest age [s] of a message used at a tick.

    Returns:
        index: (T,) int, the message used at each tick (-1 where none).
        stale: (T,) bool, ticks with no message at or before them within `tolerance`.
    """
    check_range("tolerance", tolerance, 0.0, 60.0, unit="s")
    times = np.asarray(times, dtype=np.float64)
    if len(times) > 1 and np.any(np.diff(times) < 0):
        raise ParameterError("message times must be ascending")
    index = np.searchsorted(times, ticks, side="right") - 1
    stale = (index < 0) | (np.asarray(ticks) - times[np.clip(index, 0, None)] > tolerance) if len(times) else None
    if stale is None:
        stale = np.ones(len(ticks), bool)
    return np.where(stale, -1, index), stale


def command_actions(measured: np.ndarray, target: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """(T, 7) actions from the measured TCP poses (T, 7), the commanded targets (T, 7) [m, xyzw] and
    commanded openings (T,) [m]: translation [m] + rotation vector [rad] of target * measured^-1,
    base frame, + 1 where the command closes the gripper."""
    measured, target = np.asarray(measured, np.float64), np.asarray(target, np.float64)
    rotvec = (Rotation.from_quat(target[:, 3:]) * Rotation.from_quat(measured[:, 3:]).inv()).as_rotvec()
    close = (np.asarray(opening, np.float64).reshape(-1) < CLOSE_BELOW).astype(np.float64)
    return np.concatenate([target[:, :3] - measured[:, :3], rotvec, close[:, None]], axis=1).astype(np.float32)


def valid_runs(bad: np.ndarray, min_steps: int = 1) -> list[tuple[int, int]]:
    """[start, stop) runs of steps where `bad` (T,) is False, each at least `min_steps` long."""
    runs, start = [], None
    for t, b in enumerate(list(bad) + [True]):
        if not b and start is None:
            start = t
        elif b and start is not None:
            if t - start >= min_steps:
                runs.append((start, t))
            start = None
    return runs
