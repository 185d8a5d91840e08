"""`fmb_cloud_fusion`: one point cloud from the robot's depth cameras, each camera's calibration
refined on the robot's hand first, as `fmb eval --goals perceived` fuses its cloud.

A real arm's cameras publish depth images (`<ns>/<cam>/depth`, 32FC1 [m], 0 = no return), colour
(`<ns>/<cam>/image_raw`, rgb8, optional) and `camera_info`; their extrinsic calibration (the pose
of each optical frame in `base_frame`) comes from the `camera_poses` parameter (the lab's
calibration file) or, where that is empty, from `<ns>/<cam>/calibrated_pose` (latched
`geometry_msgs/PoseStamped`; `fmb_sim_robot` publishes its cameras' there). At most `rate` times a
second the node takes the newest image of every camera, refines each camera's pose by
registering the robot's hand (at the newest measured TCP pose and finger opening) and the table
in its points (`sim.perception.hand_eye`; `hand_eye` false: the calibration as it is), fuses,
crops to the workspace box and downsamples to `points` (`sim.pointcloud.fuse_point_cloud`), and
publishes the cloud on `points_topic` in `base_frame`, stamped with the newest depth image's time:
what `fmb_perception` reads. Each camera's pose as used goes out on
`<ns>/<cam>/refined_pose`, and the status (`diagnostic_msgs/DiagnosticStatus`) says per camera
whether the refinement was applied, its size, and why not where it was not.

The images should show the hand where the TCP pose says it is: with the arm moving, take the
images and the pose from the same instant (the arm still, as at a skill's start, is simplest).
"""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2

from fmb_core.errors import FmbError, ParameterError, check_range
from fmb_ros import convert, qos
from fmb_ros.depth_views import depth_metres, intrinsics
from fmb_ros.params import declare_all
from sim.limits import DEFAULT_WORKSPACE
from sim.panda import FINGER_JOINTS
from sim.perception.hand_eye import HandEyeConfig, refine_views
from sim.pointcloud import fuse_point_cloud

PARAMETERS: dict[str, tuple[object, str]] = {
    "cameras": (["side_1", "side_2"], "cameras fixed in the world to fuse (their topics are under camera_namespace)"),
    "camera_namespace": ("camera", "prefix of <ns>/<cam>/<depth_topic>, <rgb_topic>, <info_topic>, calibrated_pose"),
    "depth_topic": ("depth", "sensor_msgs/Image in, under <ns>/<cam>/: 32FC1 [m] or 16UC1 [mm], 0 = no return"),
    "rgb_topic": ("image_raw", "sensor_msgs/Image in, under <ns>/<cam>/: rgb8, registered to the depth (optional)"),
    "info_topic": (
        "camera_info",
        "sensor_msgs/CameraInfo in, under <ns>/<cam>/: the depth image's intrinsics (pinhole, D = 0, fx = fy; "
        "an off-centre principal point is cropped about: fmb_ros.depth_views)",
    ),
    "camera_poses": (
        [0.0],
        "calibrated optical-frame pose of each camera in base_frame, x y z qx qy qz qw per camera [m, xyzw]; "
        "[0.0]: read <ns>/<cam>/calibrated_pose",
    ),
    "base_frame": ("panda_link0", "frame of the camera poses, the TCP pose and the cloud out"),
    "points": (40_000, "points in the fused cloud (sampled; repeated where fewer are in the box)"),
    "workspace_low": (list(DEFAULT_WORKSPACE.low), "crop box, lower corner in base_frame [m]"),
    "workspace_high": (list(DEFAULT_WORKSPACE.high), "crop box, upper corner in base_frame [m]"),
    "hand_eye": (True, "refine each camera's pose on the hand and the table before fusing (sim.perception.hand_eye)"),
    "rate": (2.0, "fused clouds per second at most [Hz]"),
    "seed": (0, "seed of the cloud's downsampling"),
    "tcp_pose_topic": ("tcp_pose", "geometry_msgs/PoseStamped in: measured TCP pose in base_frame [m]"),
    "gripper_state_topic": ("gripper/joint_states", "sensor_msgs/JointState in: two finger joints [m]"),
    "points_topic": ("points", "sensor_msgs/PointCloud2 out: fused cloud in base_frame [m], packed rgb"),
    "status_topic": ("~/status", "diagnostic_msgs/DiagnosticStatus out: per camera applied, shift, rotation, why not"),
}
READ_ONLY = tuple(PARAMETERS)


class CloudFusionNode(Node):
    """See module docstring."""

    def __init__(self, **kwargs):
        super().__init__("fmb_cloud_fusion", **kwargs)
        p = self.params = declare_all(self, PARAMETERS, read_only=READ_ONLY)
        self.cameras = [str(c) for c in p["cameras"]]
        if not self.cameras:
            raise ParameterError("cameras must name at least one camera", "cameras")
        check_range("points", p["points"], 1000, 1_000_000)
        check_range("rate", p["rate"], 0.01, 100.0, unit="Hz")
        low, high = np.asarray(p["workspace_low"], float), np.asarray(p["workspace_high"], float)
        if low.shape != (3,) or high.shape != (3,) or not np.all(low < high):
            raise ParameterError(f"workspace_low {low.tolist()} must lie below workspace_high {high.tolist()}")
        self.low, self.high = low, high
        self.centre = np.r_[(low[:2] + high[:2]) / 2, low[2]]
        self.poses: dict[str, np.ndarray] = {}
        flat = [float(v) for v in p["camera_poses"]]
        if flat != [0.0]:
            if len(flat) != 7 * len(self.cameras):
                raise ParameterError(
                    f"camera_poses has {len(flat)} values; {len(self.cameras)} cameras need {7 * len(self.cameras)} "
                    "(x y z qx qy qz qw each)",
                    "camera_poses",
                )
            for i, cam in enumerate(self.cameras):
                pose = np.asarray(flat[7 * i : 7 * i + 7])
                if not np.isclose(np.linalg.norm(pose[3:]), 1.0, atol=1e-3):
                    raise ParameterError(f"camera_poses: {cam}'s quaternion {pose[3:].tolist()} is not unit length")
                self.poses[cam] = pose
        self.hand_eye = HandEyeConfig(enabled=bool(p["hand_eye"]))
        self.rng = np.random.default_rng(int(p["seed"]))
        self.depth: dict[str, Image] = {}
        self.rgb: dict[str, Image] = {}
        self.info: dict[str, CameraInfo] = {}
        self.tcp: np.ndarray | None = None
        self.width: float | None = None
        self.last_stamp = None
        ns = p["camera_namespace"].rstrip("/")
        self.pub_refined = {}
        for cam in self.cameras:
            for kind, suffix, store in (
                (Image, p["depth_topic"], self.depth),
                (Image, p["rgb_topic"], self.rgb),
                (CameraInfo, p["info_topic"], self.info),
            ):
                topic = f"{ns}/{cam}/{suffix}"
                self.create_subscription(kind, topic, lambda m, c=cam, s=store: s.__setitem__(c, m), qos.SENSOR)
            if cam not in self.poses:
                self.create_subscription(
                    PoseStamped, f"{ns}/{cam}/calibrated_pose", lambda m, c=cam: self.on_calibration(c, m), qos.LATCHED
                )
            self.pub_refined[cam] = self.create_publisher(PoseStamped, f"{ns}/{cam}/refined_pose", qos.STATE)
        self.create_subscription(PoseStamped, p["tcp_pose_topic"], self.on_tcp, qos.STATE)
        self.create_subscription(JointState, p["gripper_state_topic"], self.on_gripper, qos.STATE)
        self.pub_points = self.create_publisher(PointCloud2, p["points_topic"], qos.SENSOR)
        self.pub_status = self.create_publisher(DiagnosticStatus, p["status_topic"], qos.STATE)
        self.timer = self.create_timer(1.0 / float(p["rate"]), self.on_tick)
        source = "camera_poses" if self.poses else f"{ns}/<cam>/calibrated_pose"
        self.get_logger().info(
            f"fusing {', '.join(self.cameras)} (calibration from {source}), hand-eye "
            f"{'on' if self.hand_eye.enabled else 'off'}, into {p['points_topic']}"
        )

    def on_calibration(self, camera: str, msg: PoseStamped) -> None:
        pose, frame, _ = convert.pose_stamped_array(msg)
        if frame != self.params["base_frame"]:
            self.publish_status("error", f"{camera}: calibrated pose in frame {frame!r}, expected base_frame", {})
            return
        self.poses[camera] = pose

    def on_tcp(self, msg: PoseStamped) -> None:
        self.tcp, _, _ = convert.pose_stamped_array(msg)

    def on_gripper(self, msg: JointState) -> None:
        position, _ = convert.joint_state_arrays(msg, FINGER_JOINTS)
        self.width = float(np.sum(position))

    def missing(self) -> list[str]:
        """What the next cloud still waits for."""
        inputs = (("depth", self.depth), ("camera_info", self.info), ("calibration", self.poses))
        out = [f"{c} {what}" for c in self.cameras for what, have in inputs if c not in have]
        if self.hand_eye.enabled:
            out += [name for name, v in (("tcp pose", self.tcp), ("gripper state", self.width)) if v is None]
        return out

    def on_tick(self) -> None:
        waiting = self.missing()
        if waiting:
            self.publish_status("warn", f"waiting for {', '.join(waiting)}", {})
            return
        stamp = max((self.depth[c].header.stamp for c in self.cameras), key=convert.from_stamp)
        if self.last_stamp is not None and convert.from_stamp(stamp) <= convert.from_stamp(self.last_stamp):
            return  # no newer image: the last cloud stands
        self.last_stamp = stamp
        try:
            views = []
            for cam in self.cameras:
                camera = intrinsics(cam, self.info[cam])  # an off-centre principal point: cropped about it
                depth = depth_metres(self.depth[cam])
                rgb = self.rgb.get(cam)
                rgb = convert.image_array(rgb) if rgb is not None else np.zeros((*depth.shape, 3), np.uint8)
                if rgb.shape[:2] != depth.shape:
                    rgb = np.zeros((*depth.shape, 3), np.uint8)
                spec = camera.spec(cam, self.poses[cam])
                views.append((spec, self.poses[cam], camera.crop(rgb), camera.crop(depth)))
            fits = []
            if self.hand_eye.enabled:
                views, fits = refine_views(views, self.tcp, self.width, self.hand_eye, self.centre)
            cloud = fuse_point_cloud(views, int(self.params["points"]), self.low, self.high, self.rng)
        except FmbError as e:
            self.publish_status("error", str(e), {})
            return
        t = convert.from_stamp(stamp)
        base = self.params["base_frame"]
        for spec, pose, *_ in views:  # the poses first: a reader of the cloud finds them there
            self.pub_refined[spec.name].publish(convert.pose_stamped_msg(pose, base, t))
        self.pub_points.publish(convert.point_cloud_msg(cloud, base, t))
        values = {"hand_eye": self.hand_eye.enabled}
        for fit in fits:
            row = fit.row()
            values |= {f"{fit.camera}_{k}": row[k] for k in ("applied", "points", "shift_mm", "rotation_deg", "reason")}
        refused = [f.camera for f in fits if not f.applied]
        message = f"kept the calibration of {', '.join(refused)}" if refused else "fused"
        self.publish_status("warn" if refused else "ok", message, values)

    def publish_status(self, level: str, message: str, values: dict) -> None:
        self.pub_status.publish(convert.status_msg(self.get_name(), level, message, values))


def main(args=None) -> None:
    from fmb_ros.spin import exit_process, spin_nodes

    exit_process(spin_nodes(args, CloudFusionNode))


if __name__ == "__main__":
    main()
