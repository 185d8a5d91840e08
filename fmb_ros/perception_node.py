"""`fmb_perception`: board, hole, peg (and fixture) poses from the point cloud, by registering the CAD models.

At most `rate` times a second it takes the newest `sensor_msgs/PointCloud2` (xyz in `base_frame`)
and runs `sim.perception.PoseEstimator` (open3d: crop, table removal, clusters, registration
of the known meshes, point-to-plane ICP). It publishes each object found as a
`geometry_msgs/PoseStamped` (stamped with the cloud's time), the board's holes as a
`geometry_msgs/PoseArray` (in the order given by the status value `holes`), the target hole (the
peg's) as a `PoseStamped`, with the reorientation fixture its pose and its pocket frame (the
place_on_fixture goal; `sim.perceived_goals.POCKET`) as `PoseStamped`s, and a
`diagnostic_msgs/DiagnosticStatus` with fitness, RMSE and time per estimate. Skill servers take their
target from these topics (`target_topic`), the task executor resolves `target: {object:
board|peg|hole|fixture|pocket}` from them (`perception_namespace`).

With the robot's measured TCP pose and finger opening (`tcp_pose_topic`, `gripper_state_topic`)
the points on the hand and fingers are removed before estimating (`sim.perception.without_hand`,
the self-filter `fmb eval --goals perceived` applies), so the hand beside an object is not taken
for part of it. While the fingers hold something at the cloud's time (`fmb_ros.held_peg.holding`:
opening below 70 mm, `sim.panda` constants), the held peg is also estimated in the hand on the
whole cloud (`PoseEstimator.in_hand`, as `sim.perceived_goals.perceive_goals` does) with the TCP
pose and finger opening measured nearest the cloud's stamp (within `hand_sync_tolerance`), and
published in the TCP frame (`held_peg_topic`, T_tcp_peg): the skill servers choose a `tcp_goal`'s
in-hand pose with it (`fmb_ros.held_peg`). The depth edge hides a few mm of the held peg's tip, so,
as `fmb eval` does, its tip is placed by the free space the cameras see past it
(`sim.perception.in_hand.free_space_shift`) from the depth views the cloud was fused from: each of
`depth_cameras`' depth image, camera_info and pose (`<camera_namespace>/<cam>/refined_pose`, which
`fmb_cloud_fusion` and `fmb_sim_robot` publish with each cloud), taken closest before the cloud's
stamp within `views_sync_tolerance` (`fmb_ros.depth_views`). Without them (topics absent, stale,
refused) the tip stays at the lowest points seen, and the status value `held_tip` says why.

Which objects to look for: the FMB peg part named by `peg` (its board and target hole follow), and
with `fixture` the reorientation fixture (`sim.perception.scene_models(peg, fixture=True)`). When
`peg` is empty the node reads from `episode_topic` (the simulator's episode facts, as an operator
would say what is on the table) the peg's part name and the names of the objects on the table
(`object_keys`: the fixture is looked for when it is among them), nothing else; poses never come from
there. So `fmb ros up sim` and `sim.launch.py` look for the fixture exactly in the tasks whose scene
has one (place_on_fixture, regrasp, horizontal_chain) without a parameter of their own.
"""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import String

from fmb_core.errors import FmbError, ParameterError, check_range
from fmb_ros import convert, qos
from fmb_ros.depth_views import DepthViews
from fmb_ros.held_peg import HandHistory, holding
from fmb_ros.params import declare_all
from sim.perceived_goals import FIXTURE_OBJECT, POCKET
from sim.perception import PerceptionConfig, PoseEstimator, scene_models, without_hand

_DEFAULTS = PerceptionConfig()
VIEWS_WAIT = 1.0
"""A cloud of a held peg whose cameras' depth images or poses have not all arrived waits for them
this long (from the cloud's arrival) before it is estimated without them [s]."""
PARAMETERS: dict[str, tuple[object, str]] = {
    "peg": ("", "FMB peg part name to look for (e.g. peg_star_M_long); empty: read it from episode_topic"),
    "fixture": (False, "also look for the reorientation fixture (with `peg` empty: also when the episode has one)"),
    "episode_topic": (
        "ground_truth/episode",
        "std_msgs/String JSON in: only its `peg` name and `object_keys` are read (empty: none)",
    ),
    "points_topic": ("points", "sensor_msgs/PointCloud2 in: xyz [m] in base_frame"),
    "tcp_pose_topic": (
        "tcp_pose",
        "geometry_msgs/PoseStamped in: measured TCP pose; with the gripper state, the hand's points are removed "
        "before estimating (self-filter, as fmb eval's perception); empty: no self-filter",
    ),
    "gripper_state_topic": ("gripper/joint_states", "sensor_msgs/JointState in: two finger joints [m] (self-filter)"),
    "base_frame": ("panda_link0", "frame of the cloud and of every pose out but the held peg's"),
    "tcp_frame": ("panda_hand_tcp", "TCP frame: the frame id of the held peg's pose"),
    "hand_sync_tolerance": (
        0.05,
        "the held peg is estimated with the TCP pose and finger opening measured nearest the cloud's stamp, "
        "at most this far from it [s] (none: no estimate)",
    ),
    "depth_cameras": (["side_1", "side_2"], "the cameras the cloud was fused from (depth views of the held peg's tip)"),
    "camera_namespace": ("camera", "prefix of <ns>/<cam>/<depth_topic>, <info_topic>, <camera_pose_topic>"),
    "depth_topic": (
        "depth",
        "sensor_msgs/Image in, under <ns>/<cam>/: 32FC1 [m] or 16UC1 [mm], 0 = no return; empty: no depth views "
        "(the held peg's tip at the lowest points seen)",
    ),
    "info_topic": (
        "camera_info",
        "sensor_msgs/CameraInfo in, under <ns>/<cam>/: pinhole, D = 0, fx = fy (an off-centre principal point is "
        "cropped about, the rest refused: fmb_ros.depth_views)",
    ),
    "camera_pose_topic": (
        "refined_pose",
        "geometry_msgs/PoseStamped in, under <ns>/<cam>/: the camera's optical frame in base_frame the cloud was "
        "fused with (fmb_cloud_fusion, fmb_sim_robot) [m, xyzw]",
    ),
    "views_sync_tolerance": (
        0.05,
        "each camera's depth image and pose taken closest before the cloud's stamp, at most this before it [s] "
        "(else no depth views)",
    ),
    "rate": (1.0, "estimates per second at most [Hz] (one takes about 1-4 s on one CPU core)"),
    "crop_low": (list(_DEFAULTS.crop_low), "workspace box, lower corner in base_frame [m]"),
    "crop_high": (list(_DEFAULTS.crop_high), "workspace box, upper corner [m] (below the hand)"),
    "table_z": (_DEFAULTS.table_z, "table top height in base_frame [m]"),
    "table_margin": (_DEFAULTS.table_margin, "points below table_z + this are table [m]"),
    "voxel": (_DEFAULTS.voxel, "downsampling voxel [m]"),
    "cluster_eps": (_DEFAULTS.cluster_eps, "DBSCAN neighbour distance [m]"),
    "board_yaw": (_DEFAULTS.board_yaw, "prior yaw of the board about z [rad]"),
    "board_yaw_range": (_DEFAULTS.board_yaw_range, "half-width of the board's yaw prior [rad]"),
    "min_fitness": (_DEFAULTS.min_fitness, "an estimate with fewer inliers (fraction 0-1) is not published"),
    "standing_tip_down": (True, "an upright peg stands on its tip (its ends look alike in the cloud)"),
    "board_pose_topic": ("~/board_pose", "geometry_msgs/PoseStamped out: the board [m, xyzw]"),
    "peg_pose_topic": ("~/peg_pose", "geometry_msgs/PoseStamped out: the peg (frame at its base, z to the tip)"),
    "target_hole_topic": ("~/target_hole", "geometry_msgs/PoseStamped out: the peg's hole (z out of the board)"),
    "hole_poses_topic": ("~/hole_poses", "geometry_msgs/PoseArray out: every hole of the board"),
    "fixture_pose_topic": ("~/fixture_pose", "geometry_msgs/PoseStamped out: the fixture (bottom face centre, z up)"),
    "pocket_topic": ("~/pocket", "geometry_msgs/PoseStamped out: the fixture's pocket floor centre (z up)"),
    "held_peg_topic": (
        "~/held_peg",
        "geometry_msgs/PoseStamped out: the peg held in the hand, in tcp_frame (T_tcp_peg [m, xyzw]), while the "
        "fingers hold something (needs tcp_pose_topic)",
    ),
    "status_topic": ("~/status", "diagnostic_msgs/DiagnosticStatus out: found, fitness, rmse, seconds"),
    "publish_tf": (
        False,
        "also broadcast fmb_board, fmb_peg, fmb_target_hole (, fmb_fixture, fmb_pocket) on /tf (tf2_ros: robot only)",
    ),
}


class PerceptionNode(Node):
    """See module docstring."""

    def __init__(self, node_name: str = "fmb_perception", **kwargs):
        super().__init__(node_name, **kwargs)
        p = self.params = declare_all(self, PARAMETERS, read_only=tuple(PARAMETERS))
        rate = check_range("rate", p["rate"], 0.01, 30.0, unit="Hz")
        for name in ("crop_low", "crop_high"):
            if len(p[name]) != 3:
                raise ParameterError(f"{name} must have 3 numbers [m], got {p[name]}")
        self.config = PerceptionConfig(
            crop_low=tuple(float(v) for v in p["crop_low"]),
            crop_high=tuple(float(v) for v in p["crop_high"]),
            table_z=float(p["table_z"]),
            table_margin=float(p["table_margin"]),
            voxel=float(p["voxel"]),
            cluster_eps=float(p["cluster_eps"]),
            board_yaw=float(p["board_yaw"]),
            board_yaw_range=float(p["board_yaw_range"]),
            min_fitness=float(p["min_fitness"]),
            standing_tip_down=bool(p["standing_tip_down"]),
        )
        self.estimator: PoseEstimator | None = None
        self.peg = ""
        self.fixture = False
        self.error = ""
        self.cloud: PointCloud2 | None = None
        self.cloud_arrived = 0.0  # time.monotonic() of the newest cloud's arrival
        self.last_stamp = None
        pub = self.create_publisher
        self.pub_board = pub(PoseStamped, p["board_pose_topic"], qos.STATE)
        self.pub_peg = pub(PoseStamped, p["peg_pose_topic"], qos.STATE)
        self.pub_target = pub(PoseStamped, p["target_hole_topic"], qos.STATE)
        self.pub_holes = pub(PoseArray, p["hole_poses_topic"], qos.STATE)
        self.pub_fixture = pub(PoseStamped, p["fixture_pose_topic"], qos.STATE)
        self.pub_pocket = pub(PoseStamped, p["pocket_topic"], qos.STATE)
        self.pub_held = pub(PoseStamped, p["held_peg_topic"], qos.STATE)
        self.pub_status = pub(DiagnosticStatus, p["status_topic"], qos.STATE)
        self.create_subscription(PointCloud2, p["points_topic"], self.on_points, qos.SENSOR)
        self.tcp: np.ndarray | None = None  # the hand, for the self-filter
        self.gripper: float | None = None
        self.hand = HandHistory()  # the hand by stamp, for the held peg
        self.sync = check_range("hand_sync_tolerance", p["hand_sync_tolerance"], 0.0, 1.0, unit="s")
        if p["tcp_pose_topic"] and p["gripper_state_topic"]:
            self.create_subscription(PoseStamped, p["tcp_pose_topic"], self.on_tcp_pose, qos.STATE)
            self.create_subscription(JointState, p["gripper_state_topic"], self.on_gripper, qos.STATE)
        self.views: DepthViews | None = None  # each camera's depth view by stamp, for the held peg's tip
        self.views_sync = check_range("views_sync_tolerance", p["views_sync_tolerance"], 0.0, 1.0, unit="s")
        if p["depth_topic"] and p["depth_cameras"]:
            self.views = DepthViews(p["depth_cameras"], span=max(2.0, 2 * self.views_sync))
            ns, sub = p["camera_namespace"].rstrip("/"), self.create_subscription
            views, base = self.views, p["base_frame"]
            for cam in views.cameras:
                sub(Image, f"{ns}/{cam}/{p['depth_topic']}", lambda m, c=cam: views.on_depth(c, m), qos.SENSOR)
                sub(CameraInfo, f"{ns}/{cam}/{p['info_topic']}", lambda m, c=cam: views.on_info(c, m), qos.SENSOR)
                topic = f"{ns}/{cam}/{p['camera_pose_topic']}"
                sub(PoseStamped, topic, lambda m, c=cam: views.on_pose(c, m, base), qos.STATE)
        self.tf = None
        if p["publish_tf"]:
            from fmb_ros.adapters import TfPublisher

            self.tf = TfPublisher(self)
        if p["peg"]:
            self.load(p["peg"], bool(p["fixture"]))
        elif p["episode_topic"]:
            self.create_subscription(String, p["episode_topic"], self.on_episode, qos.LATCHED)
        else:
            raise ParameterError("perception needs the peg to look for: set `peg` or `episode_topic`")
        # The estimate takes seconds: its own callback group, so a multi-threaded executor keeps
        # serving the subscriptions meanwhile.
        self.timer = self.create_timer(1.0 / rate, self.on_tick, callback_group=MutuallyExclusiveCallbackGroup())  # [s]

    def load(self, peg: str, fixture: bool = False) -> None:
        """Build the models of `peg` and its board (and with `fixture` the fixture's); on an unknown
        name stay up and say why."""
        if (peg, fixture) == (self.peg, self.fixture):
            return
        self.peg, self.fixture = peg, fixture
        try:
            self.estimator = PoseEstimator(scene_models(peg, fixture=fixture), self.config)
        except FmbError as e:
            self.estimator, self.error = None, str(e)
            self.get_logger().error(self.error)
        else:
            self.error = ""
            also = " and the fixture" if fixture else ""
            self.get_logger().info(f"looking for {peg}, its board{also} in {self.params['points_topic']}")

    def on_episode(self, msg: String) -> None:
        facts = convert.from_json(msg.data)
        name, keys = facts.get("peg"), facts.get("object_keys") or []
        if isinstance(name, str) and name:
            self.load(name, bool(self.params["fixture"]) or FIXTURE_OBJECT in keys)

    def on_points(self, msg: PointCloud2) -> None:
        self.cloud = msg
        self.cloud_arrived = time.monotonic()

    def on_tcp_pose(self, msg: PoseStamped) -> None:
        pose, frame, stamp = convert.pose_stamped_array(msg)
        if frame == self.params["base_frame"]:
            self.tcp = pose
            self.hand.add_tcp(stamp, pose)

    def on_gripper(self, msg: JointState) -> None:
        self.gripper = float(sum(msg.position))
        self.hand.add_gripper(convert.from_stamp(msg.header.stamp), self.gripper)

    def on_tick(self) -> None:
        msg = self.cloud
        if self.estimator is None or msg is None:
            self.publish_status("error" if self.error else "warn", self.error or "waiting for a point cloud", {})
            return
        if msg.header.stamp == self.last_stamp:  # no new cloud: the last estimate stands
            return
        t = convert.from_stamp(msg.header.stamp)
        hand = self.hand.at(t, self.sync)  # (TCP pose, finger opening) when the cloud was taken
        if hand is not None and holding(hand[1]) and self.views and self.views.behind(t):
            if time.monotonic() - self.cloud_arrived < VIEWS_WAIT:  # its depth images may still be on their way
                return  # the next tick looks again (at the newest cloud)
        self.last_stamp = msg.header.stamp
        frame = msg.header.frame_id
        if frame != self.params["base_frame"]:
            self.publish_status("error", f"point cloud in frame {frame!r}; expected {self.params['base_frame']!r}", {})
            return
        held = None
        try:
            points = scene = convert.point_cloud_xyz(msg)
            if self.tcp is not None and self.gripper is not None:  # the hand is not an object
                scene = without_hand(points, self.tcp, self.gripper)
            estimate = self.estimator.estimate(scene)
            if hand is not None and holding(hand[1]):  # the peg in the hand, on the whole cloud
                started = time.perf_counter()
                views, why = self.views.at(t, self.views_sync) if self.views else (None, "depth_topic is empty")
                held = self.estimator.in_hand(points, *hand, views=views)
                held_seconds = time.perf_counter() - started
                held_tip = held.tip if views else f"lowest seen (no depth views: {why})"
        except FmbError as e:
            self.publish_status("error", str(e), {})
            return
        base = self.params["base_frame"]
        if held is not None and held.pose is not None:
            self.pub_held.publish(convert.pose_stamped_msg(held.pose, self.params["tcp_frame"], t))
        publishers = {"board": self.pub_board, "peg": self.pub_peg, FIXTURE_OBJECT: self.pub_fixture}
        for key, est in estimate.objects.items():
            if est.pose is not None and key in publishers:
                publishers[key].publish(convert.pose_stamped_msg(est.pose, base, t))
        if estimate.holes:
            self.pub_holes.publish(convert.pose_array_msg(list(estimate.holes.values()), base, t))
        if estimate.target_hole is not None:
            self.pub_target.publish(convert.pose_stamped_msg(estimate.target_hole, base, t))
        pocket = estimate.frames.get(POCKET)
        if pocket is not None:
            self.pub_pocket.publish(convert.pose_stamped_msg(pocket, base, t))
        if self.tf is not None:
            frames = {f"fmb_{k}": v for k, v in estimate.poses.items()}
            if estimate.target_hole is not None:
                frames["fmb_target_hole"] = estimate.target_hole
            if pocket is not None:
                frames["fmb_pocket"] = pocket
            self.tf.send(frames, base, msg.header.stamp)
        values = {
            "peg": self.peg,
            "fixture": self.fixture,
            "seconds": round(estimate.seconds, 3),
            "clusters": estimate.clusters,
        }
        for key, est in estimate.objects.items():
            values[f"{key}_found"] = est.pose is not None
            values[f"{key}_fitness"] = round(est.fitness, 3)
            values[f"{key}_rmse"] = "nan" if not np.isfinite(est.rmse) else round(est.rmse, 5)
        values["holes"] = ",".join(estimate.holes)
        values["holding"] = "unknown" if hand is None else holding(hand[1])  # at the cloud's time
        missing = [k for k, e in estimate.objects.items() if e.pose is None]
        if held is not None:
            values.update(held_found=held.pose is not None, held_fitness=round(held.fitness, 3))
            values["held_rmse"] = "nan" if not np.isfinite(held.rmse) else round(held.rmse, 5)
            values.update(held_points=held.points, held_seconds=round(held_seconds, 3), held_tip=held_tip)
            if held.pose is None:
                missing.append("held peg")
        message = f"not found: {', '.join(missing)}" if missing else "all found"
        self.publish_status("warn" if missing else "ok", message, values)

    def publish_status(self, level: str, message: str, values: dict) -> None:
        self.pub_status.publish(convert.status_msg(self.get_name(), level, message, values))


def main(args=None) -> None:
    from fmb_ros.spin import exit_process, spin_nodes

    exit_process(spin_nodes(args, PerceptionNode))


if __name__ == "__main__":
    main()
