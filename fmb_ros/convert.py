"""Conversions between ROS messages and the arrays the rest of the stack uses (one place, no rclpy).

Conventions: poses are (7,) float arrays, position [m] + quaternion xyzw (as ROS and `sim`);
wrenches (6,) force [N] + torque [N m]; twists (6,) linear [m/s] + angular [rad/s]; times are
float seconds. Point clouds are (N, 6) float32: xyz [m] + rgb in [0, 1], packed into PointCloud2's
usual `rgb` float field (as RViz and PCL read it). Images: rgb8 (H, W, 3) uint8 and 32FC1 depth
(H, W) float32 [m]. Camera intrinsics follow `sim.scene.CameraSpec` (pinhole, square pixels,
vertical field of view) with pixel centres at integer coordinates, as in sensor_msgs/CameraInfo.
"""

from __future__ import annotations

import json
import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray, PoseStamped, TwistStamped, WrenchStamped
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField
from std_msgs.msg import Header

from fmb_ros.exceptions import ConversionError

# -- time and headers ----------------------------------------------------------------------------


def to_stamp(seconds: float) -> Time:
    """builtin_interfaces/Time of `seconds` (>= 0)."""
    nanos = int(round(float(seconds) * 1e9))
    return Time(sec=nanos // 1_000_000_000, nanosec=nanos % 1_000_000_000)


def to_duration(seconds: float) -> Duration:
    """builtin_interfaces/Duration of `seconds` (>= 0)."""
    nanos = int(round(float(seconds) * 1e9))
    return Duration(sec=nanos // 1_000_000_000, nanosec=nanos % 1_000_000_000)


def from_stamp(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def header(frame_id: str, seconds: float) -> Header:
    return Header(frame_id=frame_id, stamp=to_stamp(seconds))


# -- poses ---------------------------------------------------------------------------------------


def pose_msg(pose) -> Pose:
    """geometry_msgs/Pose of a (7,) pose [m, xyzw]."""
    p = _vector(pose, 7, "pose")
    msg = Pose()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in p[:3])
    o = msg.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in p[3:])
    return msg


def pose_array(msg: Pose) -> np.ndarray:
    """(7,) pose of a geometry_msgs/Pose."""
    p, o = msg.position, msg.orientation
    return np.array([p.x, p.y, p.z, o.x, o.y, o.z, o.w])


def pose_stamped_msg(pose, frame_id: str, seconds: float) -> PoseStamped:
    return PoseStamped(header=header(frame_id, seconds), pose=pose_msg(pose))


def pose_stamped_array(msg: PoseStamped) -> tuple[np.ndarray, str, float]:
    """((7,) pose, frame id, stamp [s]) of a PoseStamped."""
    return pose_array(msg.pose), msg.header.frame_id, from_stamp(msg.header.stamp)


def pose_array_msg(poses, frame_id: str, seconds: float) -> PoseArray:
    """geometry_msgs/PoseArray of (K, 7) poses."""
    return PoseArray(header=header(frame_id, seconds), poses=[pose_msg(p) for p in poses])


def pose_array_arrays(msg: PoseArray) -> np.ndarray:
    """(K, 7) poses of a PoseArray."""
    return np.array([pose_array(p) for p in msg.poses]).reshape(-1, 7)


# -- robot state ---------------------------------------------------------------------------------


def joint_state_msg(names, position, velocity=None, effort=None, seconds: float = 0.0) -> JointState:
    """sensor_msgs/JointState; positions [rad or m], velocities [rad/s or m/s], efforts [N m or N]."""
    n = len(names)
    msg = JointState(header=header("", seconds), name=list(names))
    msg.position = [float(v) for v in _vector(position, n, "position")]
    if velocity is not None:
        msg.velocity = [float(v) for v in _vector(velocity, n, "velocity")]
    if effort is not None:
        msg.effort = [float(v) for v in _vector(effort, n, "effort")]
    return msg


def joint_state_arrays(msg: JointState, names) -> tuple[np.ndarray, np.ndarray]:
    """(positions, velocities) of the joints `names`, in that order (missing velocities are 0)."""
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ConversionError(f"JointState lacks joints {missing}; it has {list(msg.name)}")
    rows = [index[n] for n in names]
    q = np.array([msg.position[i] for i in rows])
    dq = np.array([msg.velocity[i] for i in rows]) if len(msg.velocity) == len(msg.name) else np.zeros(len(rows))
    return q, dq


def wrench_msg(wrench, frame_id: str, seconds: float) -> WrenchStamped:
    w = _vector(wrench, 6, "wrench")
    msg = WrenchStamped(header=header(frame_id, seconds))
    msg.wrench.force.x, msg.wrench.force.y, msg.wrench.force.z = (float(v) for v in w[:3])
    msg.wrench.torque.x, msg.wrench.torque.y, msg.wrench.torque.z = (float(v) for v in w[3:])
    return msg


def wrench_array(msg: WrenchStamped) -> np.ndarray:
    f, t = msg.wrench.force, msg.wrench.torque
    return np.array([f.x, f.y, f.z, t.x, t.y, t.z])


def twist_msg(twist, frame_id: str, seconds: float) -> TwistStamped:
    v = _vector(twist, 6, "twist")
    msg = TwistStamped(header=header(frame_id, seconds))
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(x) for x in v[:3])
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(x) for x in v[3:])
    return msg


def twist_array(msg: TwistStamped) -> np.ndarray:
    lin, ang = msg.twist.linear, msg.twist.angular
    return np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z])


# -- point clouds --------------------------------------------------------------------------------

_CLOUD_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])


def point_cloud_msg(points, frame_id: str, seconds: float) -> PointCloud2:
    """PointCloud2 of (N, 6) points: xyz [m] + rgb in [0, 1] (packed as 0x00RRGGBB in a float32)."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 6:
        raise ConversionError(f"points must be (N, 6) xyz + rgb, got shape {pts.shape}")
    rgb = np.clip(np.round(pts[:, 3:] * 255.0), 0, 255).astype(np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    data = np.empty(len(pts), _CLOUD_DTYPE)
    data["x"], data["y"], data["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    data["rgb"] = packed.view(np.float32)
    fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate(("x", "y", "z", "rgb"))
    ]
    return PointCloud2(
        header=header(frame_id, seconds),
        height=1,
        width=len(pts),
        fields=fields,
        is_bigendian=False,
        point_step=_CLOUD_DTYPE.itemsize,
        row_step=_CLOUD_DTYPE.itemsize * len(pts),
        data=data.tobytes(),
        is_dense=bool(np.all(np.isfinite(pts[:, :3]))),
    )


def point_cloud_array(msg: PointCloud2) -> np.ndarray:
    """(N, 6) float32 points of a PointCloud2 with float32 x, y, z and packed rgb fields."""
    offsets = {f.name: f for f in msg.fields}
    for name in ("x", "y", "z", "rgb"):
        f = offsets.get(name)
        if f is None or f.datatype != PointField.FLOAT32:
            raise ConversionError(
                f"PointCloud2 needs float32 fields x, y, z, rgb; has {[(f.name, f.datatype) for f in msg.fields]}"
            )
    if msg.is_bigendian:
        raise ConversionError("big-endian PointCloud2 is not supported")
    n = msg.width * msg.height
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "rgb"],
            "formats": ["<f4"] * 3 + ["<u4"],
            "offsets": [offsets[k].offset for k in ("x", "y", "z", "rgb")],
            "itemsize": msg.point_step,
        }
    )
    raw = np.frombuffer(bytes(msg.data), dtype=dtype, count=n)
    rgb = np.stack([(raw["rgb"] >> s) & 0xFF for s in (16, 8, 0)], axis=1).astype(np.float32) / 255.0
    return np.concatenate([np.stack([raw["x"], raw["y"], raw["z"]], axis=1), rgb], axis=1).astype(np.float32)


def point_cloud_xyz(msg: PointCloud2) -> np.ndarray:
    """(N, 3) float32 xyz of a PointCloud2 with float32 x, y, z fields (any other fields ignored;
    organised clouds are flattened; NaN points, as depth cameras send for no return, are kept)."""
    fields = {f.name: f for f in msg.fields}
    for name in ("x", "y", "z"):
        f = fields.get(name)
        if f is None or f.datatype != PointField.FLOAT32:
            raise ConversionError(
                f"PointCloud2 needs float32 fields x, y, z; has {[(f.name, f.datatype) for f in msg.fields]}"
            )
    if msg.is_bigendian:
        raise ConversionError("big-endian PointCloud2 is not supported")
    n = msg.width * msg.height
    if msg.point_step < 12 or len(msg.data) < n * msg.point_step:
        raise ConversionError(f"PointCloud2 has {len(msg.data)} bytes for {n} points of {msg.point_step} bytes")
    dtype = np.dtype(
        {"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [fields[k].offset for k in "xyz"],
         "itemsize": msg.point_step}
    )  # fmt: skip
    raw = np.frombuffer(bytes(msg.data), dtype=dtype, count=n)
    return np.stack([raw["x"], raw["y"], raw["z"]], axis=1).astype(np.float32)


# -- images --------------------------------------------------------------------------------------


def image_msg(array, frame_id: str, seconds: float) -> Image:
    """sensor_msgs/Image of an (H, W, 3) uint8 RGB image (rgb8) or (H, W) float32 depth [m] (32FC1)."""
    a = np.ascontiguousarray(array)
    if a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8:
        encoding, step = "rgb8", 3 * a.shape[1]
    elif a.ndim == 2 and a.dtype == np.float32:
        encoding, step = "32FC1", 4 * a.shape[1]
    else:
        raise ConversionError(f"image must be (H, W, 3) uint8 or (H, W) float32, got {a.shape} {a.dtype}")
    return Image(
        header=header(frame_id, seconds),
        height=a.shape[0],
        width=a.shape[1],
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=a.tobytes(),
    )


def image_array(msg: Image) -> np.ndarray:
    """The array of an rgb8, 32FC1 or 16UC1 Image (see `image_msg`; 16UC1, a RealSense's depth in
    millimetres, comes back as uint16)."""
    if msg.encoding == "rgb8":
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
        return rows[:, : 3 * msg.width].reshape(msg.height, msg.width, 3).copy()
    if msg.encoding == "32FC1":
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
        return rows[:, : 4 * msg.width].copy().view("<f4").reshape(msg.height, msg.width)
    if msg.encoding in ("16UC1", "mono16"):
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
        order = ">u2" if msg.is_bigendian else "<u2"
        return rows[:, : 2 * msg.width].copy().view(order).reshape(msg.height, msg.width).astype(np.uint16)
    raise ConversionError(f"image encoding {msg.encoding!r} is not supported; known: rgb8, 32FC1, 16UC1")


def camera_info_msg(width: int, height: int, fovy_deg: float, frame_id: str, seconds: float) -> CameraInfo:
    """CameraInfo of an ideal pinhole camera (no distortion) with vertical field of view `fovy_deg` [deg]."""
    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
    cx, cy = width / 2 - 0.5, height / 2 - 0.5
    return CameraInfo(
        header=header(frame_id, seconds),
        width=int(width),
        height=int(height),
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=[f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )


# -- status --------------------------------------------------------------------------------------

LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


def status_msg(name: str, level: str, message: str, values: dict, hardware_id: str = "") -> DiagnosticStatus:
    """diagnostic_msgs/DiagnosticStatus; `values` become key/value strings (floats with 6 digits)."""
    return DiagnosticStatus(
        level=LEVELS[level],
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=_text(v)) for k, v in values.items()],
    )


def status_values(msg: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in msg.values}


def to_json(data) -> str:
    """JSON text of episode facts (numpy arrays and scalars become lists and numbers)."""
    return json.dumps(data, default=_json_default, separators=(",", ":"))


def from_json(text: str) -> dict:
    """The dict of a JSON object text; {} for anything else (a malformed message is ignored)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _text(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    return str(v)


def _vector(values, n: int, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=float).reshape(-1)
    if a.shape != (n,):
        raise ConversionError(f"{name} must have {n} values, got {a.size}")
    return a
