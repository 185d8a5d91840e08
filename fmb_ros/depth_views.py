"""The cameras' depth views a point cloud was fused from, out of ROS messages and by stamp (no rclpy).

    views = DepthViews(["side_1", "side_2"])             # fmb_perception: each camera's messages as they come
    views.on_info("side_1", info)                         # sensor_msgs/CameraInfo (-> `intrinsics`)
    views.on_depth("side_1", image)                       # sensor_msgs/Image, 32FC1 [m] or 16UC1 [mm]
    views.on_pose("side_1", pose_stamped, "panda_link0")  # <ns>/<cam>/refined_pose: what the cloud was fused with
    found, why = views.at(cloud_stamp, tolerance)         # [(CameraSpec, pose, None, depth)], "" or None, why not
    held = estimator.in_hand(points, tcp, opening, views=found)

`sim.perception.in_hand.free_space_shift` slides a held peg tip-first until its tip would hide what
the cameras see behind it, projecting the tip into each depth image; so it needs, per camera, the
image, its intrinsics and the pose the cloud was fused with (refined on the hand: `fmb_cloud_fusion`
and `fmb_sim_robot` publish it as `<ns>/<cam>/refined_pose`, stamped with the cloud's time). These
are the `views` tuples of `sim.env.FmbEnv.camera_views` (rgb is None: nothing reads it).

Intrinsics: `sim.scene.CameraSpec` is an ideal pinhole: square pixels, the principal point at the
image centre, no distortion, f = 0.5 H / tan(fovy / 2) [px] (`sim.pointcloud.focal_length`). A
camera_info K (pixel centres at integer coordinates) is taken as follows:
- an off-centre principal point (a RealSense's is a pixel or two off) is handled: the image is
  cropped symmetrically about it, which centres it to within 0.25 px (`Intrinsics.rows`, `cols`);
- fx != fy by more than `edge_px` at the cropped image's edge, and any non-zero distortion
  coefficient, are refused with a ConversionError naming the values: rectify the depth first
  (realsense2_camera's aligned depth is rectified, D = 0).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import NamedTuple

import numpy as np
from geometry_msgs.msg import PoseStamped
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image

from fmb_core.errors import FmbError
from fmb_ros import convert
from fmb_ros.exceptions import ConversionError

EDGE_PX = 0.5
"""fx and fy may differ by at most this many pixels at the image's edge [px]."""


class Intrinsics(NamedTuple):
    """A camera_info as `sim.scene.CameraSpec` takes it (see module docstring).

    Attributes:
        fovy: vertical field of view of the cropped image [deg].
        width, height: size of the cropped image [px].
        rows, cols: the crop of the full image that centres the principal point.
        shape: (H, W) of the full image [px], as the depth images come.
    """

    fovy: float
    width: int
    height: int
    rows: slice
    cols: slice
    shape: tuple[int, int]

    def spec(self, name: str, pose):
        """The CameraSpec of this camera at `pose` (7,) [m, xyzw, OpenCV optical axes]."""
        from sim.scene import CameraSpec

        pose = np.asarray(pose, float)
        axis = Rotation.from_quat(pose[3:7]).apply([0.0, 0.0, 1.0])
        return CameraSpec(name, tuple(pose[:3]), tuple(pose[:3] + axis), self.fovy, self.width, self.height)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The centred crop of a full (H, W, ...) image."""
        if image.shape[:2] != self.shape:
            (h, w), (rows, cols) = image.shape[:2], self.shape
            raise ConversionError(f"image {w}x{h} px, camera_info {cols}x{rows}")
        return image[self.rows, self.cols]


def _centred(c: float, size: int, axis: str, name: str) -> slice:
    """The crop [a, b) of `size` pixels whose centre (a + b) / 2 lies nearest the principal point
    `c` (ROS: pixel centres at integers, so at c + 0.5 in pixel-edge coordinates), widest first."""
    twice = round(2 * c + 1)  # a + b
    a, b = (0, twice) if twice <= size else (twice - size, size)
    if b - a < 16:
        raise ConversionError(f"camera {name}: principal point c{axis} {c:g} px leaves under 16 px about it of {size}")
    return slice(a, b)


def intrinsics(name: str, info: CameraInfo, edge_px: float = EDGE_PX) -> Intrinsics:
    """The Intrinsics of camera `name`'s camera_info; ConversionError for what a CameraSpec cannot
    hold (module docstring)."""
    fx, cx, fy, cy = (float(info.k[i]) for i in (0, 2, 4, 5))
    w, h = int(info.width), int(info.height)
    if fx <= 0 or fy <= 0 or w <= 0 or h <= 0:
        raise ConversionError(f"camera {name}: camera_info has no intrinsics (fx {fx:g}, fy {fy:g}, {w}x{h})")
    if any(abs(float(d)) > 1e-9 for d in info.d):
        coefficients = ", ".join(f"{float(d):g}" for d in info.d)
        raise ConversionError(
            f"camera {name}: distortion {info.distortion_model} [{coefficients}] is not supported; "
            "publish the rectified depth (D = 0)"
        )
    rows, cols = _centred(cy, h, "y", name), _centred(cx, w, "x", name)
    width, height = cols.stop - cols.start, rows.stop - rows.start
    if abs(fx - fy) * width / 2 / fy > edge_px:
        raise ConversionError(
            f"camera {name}: fx {fx:g} != fy {fy:g} px (by {abs(fx - fy) * width / 2 / fy:.2f} px at the image's "
            f"edge, over {edge_px:g}): square pixels only"
        )
    fovy = math.degrees(2 * math.atan(0.5 * height / fy))
    return Intrinsics(fovy, width, height, rows, cols, (h, w))


def depth_metres(msg: Image) -> np.ndarray:
    """(H, W) float32 depth [m] of a 32FC1 [m] or 16UC1 [mm] depth image (0 = no return)."""
    depth = convert.image_array(msg)
    if depth.dtype == np.uint16:
        return depth.astype(np.float32) * 1e-3
    if depth.ndim != 2:
        raise ConversionError(f"depth image encoding {msg.encoding!r}: expected 32FC1 or 16UC1")
    return np.nan_to_num(depth.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


class DepthViews:
    """Each camera's depth images and poses of the last `span` seconds by stamp, and its newest
    intrinsics, so that a cloud is looked at with the views it was fused from. Thread-safe (the
    subscriptions add while the estimate reads).

    Args:
        cameras: the cameras the cloud is fused from (all are needed).
        span: images and poses older than this before the newest are dropped [s].
        size: at most this many images per camera are kept (30 Hz x 2 s).
    """

    def __init__(self, cameras, span: float = 2.0, size: int = 64):
        self.cameras = [str(c) for c in cameras]
        self.span = float(span)
        self._depth = {c: deque(maxlen=size) for c in self.cameras}
        self._pose = {c: deque(maxlen=100 * size) for c in self.cameras}
        self._intrinsics: dict[str, Intrinsics] = {}
        self._refused: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def add_depth(self, camera: str, stamp: float, depth: np.ndarray) -> None:
        """A depth image (H, W) [m, 0 = no return] of `camera` taken at `stamp` [s]."""
        self._add(self._depth[camera], float(stamp), depth, (camera, "depth image"))

    def add_pose(self, camera: str, stamp: float, pose) -> None:
        """`camera`'s optical frame (7,) [m, xyzw, base frame] the cloud of `stamp` [s] was fused with."""
        self._add(self._pose[camera], float(stamp), np.asarray(pose, float).copy(), (camera, "pose"))

    def add_intrinsics(self, camera: str, value: Intrinsics) -> None:
        with self._lock:
            self._intrinsics[camera] = value
            self._refused.pop((camera, "camera_info"), None)

    def refuse(self, camera: str, what: str, reason: str) -> None:
        """The newest `what` ("depth image", "pose", "camera_info") of `camera` could not be used."""
        with self._lock:
            self._refused[(camera, what)] = reason

    # -- messages (what a node's subscriptions hand over; what cannot be used is refused, with why) --
    def on_depth(self, camera: str, msg: Image) -> None:
        try:
            self.add_depth(camera, convert.from_stamp(msg.header.stamp), depth_metres(msg))
        except FmbError as e:
            self.refuse(camera, "depth image", str(e))

    def on_info(self, camera: str, msg: CameraInfo) -> None:
        try:
            self.add_intrinsics(camera, intrinsics(camera, msg))
        except FmbError as e:
            self.refuse(camera, "camera_info", str(e))

    def on_pose(self, camera: str, msg: PoseStamped, base_frame: str) -> None:
        pose, frame, stamp = convert.pose_stamped_array(msg)
        if frame != base_frame:
            self.refuse(camera, "pose", f"in frame {frame!r}, expected {base_frame!r}")
        else:
            self.add_pose(camera, stamp, pose)

    def at(self, stamp: float, tolerance: float) -> tuple[list | None, str]:
        """([(CameraSpec, pose (7,), None, depth (h, w) [m])] of every camera, taken closest before
        `stamp` [s] and at most `tolerance` [s] before it, ""), or (None, why not)."""
        views, missing = [], []
        with self._lock:
            for cam in self.cameras:
                refused = [f"{what}: {why}" for (c, what), why in self._refused.items() if c == cam]
                if refused:
                    missing.append(f"{cam} {'; '.join(refused)}")
                    continue
                if cam not in self._intrinsics:
                    missing.append(f"{cam}: no camera_info")
                    continue
                depth, why_depth = _before(self._depth[cam], stamp, tolerance, "depth image")
                pose, why_pose = _before(self._pose[cam], stamp, tolerance, "pose")
                if depth is None or pose is None:
                    missing.append(f"{cam}: {why_depth or why_pose}")
                    continue
                intrinsics = self._intrinsics[cam]
                try:
                    views.append((intrinsics.spec(cam, pose), pose, None, intrinsics.crop(depth)))
                except ConversionError as e:
                    missing.append(f"{cam}: {e}")
        return (None, "; ".join(missing)) if missing else (views, "")

    def behind(self, stamp: float) -> bool:
        """Whether some camera's newest depth image or pose is older than `stamp` [s] (or none
        came yet): its views of a cloud taken at `stamp` may still be on their way."""
        with self._lock:
            newest = [items[-1][0] if items else -float("inf") for d in (self._depth, self._pose) for items in
                      (d.get(cam, ()) for cam in self.cameras)]  # fmt: skip
        return any(t < stamp - 1e-9 for t in newest)

    def _add(self, items: deque, stamp: float, value, key: tuple[str, str]) -> None:
        with self._lock:
            items.append((stamp, value))
            while items and items[0][0] < stamp - self.span:
                items.popleft()
            self._refused.pop(key, None)


def _before(items: deque, stamp: float, tolerance: float, what: str):
    """(the value of `items` closest before `stamp`, at most `tolerance` before, "") or (None, why)."""
    if not items:
        return None, f"no {what} received"
    before = [(t, v) for t, v in items if stamp - tolerance - 1e-9 <= t <= stamp + 1e-9]
    if before:
        return max(before, key=lambda item: item[0])[1], ""
    nearest = min(items, key=lambda item: abs(item[0] - stamp))[0]
    return None, f"no {what} in the {tolerance:g} s before the cloud (nearest {nearest - stamp:+.3f} s)"
