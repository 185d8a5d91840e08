"""Poses and rotations (numpy). Quaternions are xyzw, as in ROS and scipy.

A pose is a (7,) float array: position [m] then quaternion xyzw. Conversions to MuJoCo's
wxyz order happen only inside the MuJoCo backend (`xyzw_to_wxyz`, `wxyz_to_xyzw`).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

IDENTITY_QUAT = np.array([0.0, 0.0, 0.0, 1.0])


def pose(position, quat=IDENTITY_QUAT) -> np.ndarray:
    """(7,) pose from a position (3,) [m] and a quaternion (4,) xyzw."""
    return np.concatenate([np.asarray(position, float), np.asarray(quat, float)])


def quat_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion xyzw from extrinsic x-y-z angles [rad]."""
    return Rotation.from_euler("xyz", [roll, pitch, yaw]).as_quat()


def quat_from_yaw(yaw: float) -> np.ndarray:
    """Quaternion xyzw of a rotation by `yaw` [rad] about +z."""
    return np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])


def yaw_of(quat) -> float:
    """Rotation about +z [rad] of the x axis of `quat` (xyzw), in (-pi, pi]."""
    x_axis = Rotation.from_quat(quat).apply([1.0, 0.0, 0.0])
    return float(np.arctan2(x_axis[1], x_axis[0]))


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pose a * b: `b` expressed in frame `a`, returned in a's parent frame."""
    ra = Rotation.from_quat(a[3:])
    return pose(a[:3] + ra.apply(b[:3]), (ra * Rotation.from_quat(b[3:])).as_quat())


def about(point, transform: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Pose `p` (7,) moved by `transform` (7,) applied about `point` (3,) [m] instead of the origin."""
    return compose(pose(point), compose(transform, compose(pose(-np.asarray(point, float)), p)))


def inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of pose `a`."""
    r = Rotation.from_quat(a[3:]).inv()
    return pose(-r.apply(a[:3]), r.as_quat())


def quat_multiply(a, b) -> np.ndarray:
    """Hamilton product a * b of xyzw quaternions (plain numpy: this runs at the physics rate)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def rotation_error(current_quat, target_quat) -> np.ndarray:
    """(3,) rotation vector [rad] that takes `current` to `target`, in the base frame."""
    c = np.asarray(current_quat, float)
    q = quat_multiply(target_quat, np.array([-c[0], -c[1], -c[2], c[3]]))
    if q[3] < 0:  # shortest way round
        q = -q
    v = q[:3]
    s = float(np.sqrt(v @ v))
    if s < 1e-12:
        return 2.0 * v
    return (2.0 * np.arctan2(s, q[3]) / s) * v


def apply_delta(current: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Pose `current` moved by `delta` (6,): translation [m] and rotation vector [rad], both in
    the base frame; the rotation is applied about the current position."""
    r = Rotation.from_rotvec(delta[3:6]) * Rotation.from_quat(current[3:])
    return pose(current[:3] + delta[:3], r.as_quat())


def axis_angle_between(quat_a, quat_b, axis=(0.0, 0.0, 1.0)) -> float:
    """Angle [rad] between `axis` rotated by quat_a and by quat_b."""
    va = Rotation.from_quat(quat_a).apply(axis)
    vb = Rotation.from_quat(quat_b).apply(axis)
    return float(np.arccos(np.clip(np.dot(va, vb), -1.0, 1.0)))


def xyzw_to_wxyz(q) -> np.ndarray:
    q = np.asarray(q, float)
    return np.array([q[3], q[0], q[1], q[2]])


def wxyz_to_xyzw(q) -> np.ndarray:
    q = np.asarray(q, float)
    return np.array([q[1], q[2], q[3], q[0]])


def z_axis(quat) -> np.ndarray:
    """(3,) unit z axis of the frame with orientation `quat` (xyzw)."""
    x, y, z, w = quat
    return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])


def flip_z(quat) -> np.ndarray:
    """Orientation turned 180 deg about its own x axis (its z axis reversed)."""
    return quat_multiply(quat, np.array([1.0, 0.0, 0.0, 0.0]))


def quat_from_matrix(matrix) -> np.ndarray:
    """Quaternion xyzw of a (3, 3) rotation matrix."""
    return Rotation.from_matrix(matrix).as_quat()
