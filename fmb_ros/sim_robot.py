"""`fmb_sim_robot`: a simulated Panda with cameras, exposed on ROS 2 as a real arm would be.

The node owns one `sim` environment (task, backend and seed are parameters) and advances it one
control period (0.1 s of simulated time) per tick of a wall timer running `real_time_factor`
times faster than 10 Hz, tracking the newest commanded equilibrium pose with the Cartesian
impedance controller (as the SERL/Franka controller FMB used). It publishes `/clock`, so other
nodes run on simulated time with `use_sim_time:=true`; every stamp is simulated time.

Privileged simulator state, which a real robot does not have, is kept apart under
`ground_truth_namespace`: object poses, the episode facts (JSON) and the task's success check.
Scripted experts in skill nodes read it; policies and perception must not.

Topics, services and parameters: see fmb_ros/README.md (and PARAMETERS below).
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import rclpy.clock
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseArray, PoseStamped, TwistStamped, WrenchStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from fmb_ros import convert, qos
from fmb_ros.exceptions import ConversionError
from fmb_ros.params import declare_all
from fmb_ros.trajectory import JointTrajectoryPlan, plan_from_msg
from sim.observation import TCP_POSE

PARAMETERS: dict[str, tuple[object, str]] = {
    "task": ("grasp", "sim task (grasp, place_on_fixture, regrasp, rotate, insert, vertical_chain, ...)"),
    "backend": ("mujoco", "physics backend (mujoco, pybullet)"),
    "seed": (0, "scene seed used by the next reset (a reset with the same seed gives the same scene)"),
    "randomize": (True, "draw object colour, friction and mass per episode"),
    "cameras": ([], "cameras to render and publish (side_1, side_2, wrist); none by default"),
    "image_size": ([128, 128], "width and height of rendered images [px]"),
    "point_cloud": (0, "points in the fused cloud published on points_topic (0 = none; needs cameras)"),
    "sensor": ("exact", "depth camera model of sim.sensor (exact, default: D415-like), as fmb eval --sensor"),
    "hand_eye": (True, "refine each camera's calibration on the hand before fusing points_topic (fmb eval --hand-eye)"),
    "real_time_factor": (1.0, "simulated seconds per wall-clock second (> 0)"),
    "base_frame": ("panda_link0", "robot base frame: poses, points and commands are in it"),
    "tcp_frame": ("panda_hand_tcp", "TCP frame (the URDF's panda_grasptarget): wrench and twist frame id"),
    "joint_states_topic": ("joint_states", "sensor_msgs/JointState out: 7 arm joints [rad, rad/s]"),
    "tcp_pose_topic": ("tcp_pose", "geometry_msgs/PoseStamped out: measured TCP pose in base_frame [m]"),
    "tcp_twist_topic": ("tcp_twist", "geometry_msgs/TwistStamped out: TCP velocity in base_frame [m/s, rad/s]"),
    "wrench_topic": ("wrench", "geometry_msgs/WrenchStamped out: hand wrench in tcp_frame [N, N m]"),
    "gripper_state_topic": ("gripper/joint_states", "sensor_msgs/JointState out: two finger joints [m]"),
    "equilibrium_pose_topic": ("equilibrium_pose", "geometry_msgs/PoseStamped in: impedance target [m]"),
    "joint_trajectory_topic": (
        "joint_trajectory",
        "trajectory_msgs/JointTrajectory in: arm waypoints [rad], tracked through forward kinematics",
    ),
    "gripper_command_topic": ("gripper/command", "std_msgs/Float64 in: finger opening [m]; < 0.04 closes"),
    "camera_namespace": (
        "camera",
        "prefix of <ns>/<cam>/image_raw, depth, camera_info, calibrated_pose and (with point_cloud) refined_pose",
    ),
    "points_topic": ("points", "sensor_msgs/PointCloud2 out: fused cloud in base_frame [m], packed rgb"),
    "ground_truth_namespace": ("ground_truth", "prefix of privileged topics (object_poses, episode, evaluation)"),
    "reset_service": ("sim/reset", "std_srvs/Trigger: new episode from the seed parameter"),
    "threads": (0, "CPU threads of physics and rendering (0 = the stack's rollout budget: 1; fmb_core.threads)"),
}
READ_ONLY = tuple(k for k in PARAMETERS if k not in ("seed", "real_time_factor"))


class SimRobotNode(Node):
    """See module docstring."""

    def __init__(self, **kwargs):
        super().__init__("fmb_sim_robot", **kwargs)
        p = self.params = declare_all(self, PARAMETERS, read_only=READ_ONLY)
        from fmb_core.threads import configure

        self.threads = configure("rollout", threads=int(p["threads"]), log=self.get_logger().info)
        from sim.env import make_env  # after parameters: a bad one is reported before MuJoCo loads
        from sim.panda import ARM_JOINTS, FINGER_JOINTS, GRIPPER_OPEN
        from sim.perception.hand_eye import HandEyeConfig
        from sim.sensor import make_sensor

        self.arm_joints, self.finger_joints, self.gripper_open = ARM_JOINTS, FINGER_JOINTS, GRIPPER_OPEN
        # Every call into the simulation runs on this one thread: an OpenGL (EGL) context can be
        # current in one thread only, and executor callbacks run on any thread of a pool.
        self._sim_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fmb_sim")
        self.env = make_env(
            p["task"],
            p["backend"],
            cameras=tuple(p["cameras"]),
            image_size=tuple(int(v) for v in p["image_size"]),
            point_cloud=int(p["point_cloud"]),
            randomize=bool(p["randomize"]),
            sensor=make_sensor(str(p["sensor"])),
            hand_eye=HandEyeConfig(enabled=bool(p["hand_eye"])),
            seed=int(p["seed"]),
        )
        self.period = 1.0 / self.env.config.physics.control_hz  # [s] of simulated time per tick
        self.sim_time = 0.0
        self.episode_json = ""
        self.object_keys: list[str] = []
        self.step_times: deque[float] = deque(maxlen=100_000)
        """Wall time [s, perf_counter] each state was published (for `fmb bench ros`)."""
        self.command_times: deque[float] = deque(maxlen=100_000)
        """Wall time [s, perf_counter] each equilibrium pose arrived."""

        base, tcp = p["base_frame"], p["tcp_frame"]
        self.base_frame, self.tcp_frame = base, tcp
        self.pub_clock = self.create_publisher(Clock, "/clock", qos.CLOCK)
        self.pub_joints = self.create_publisher(JointState, p["joint_states_topic"], qos.STATE)
        self.pub_tcp = self.create_publisher(PoseStamped, p["tcp_pose_topic"], qos.STATE)
        self.pub_twist = self.create_publisher(TwistStamped, p["tcp_twist_topic"], qos.STATE)
        self.pub_wrench = self.create_publisher(WrenchStamped, p["wrench_topic"], qos.STATE)
        self.pub_gripper = self.create_publisher(JointState, p["gripper_state_topic"], qos.STATE)
        ns = p["camera_namespace"].rstrip("/")
        self.pub_cameras = {
            cam: (
                self.create_publisher(Image, f"{ns}/{cam}/image_raw", qos.SENSOR),
                self.create_publisher(Image, f"{ns}/{cam}/depth", qos.SENSOR),
                self.create_publisher(CameraInfo, f"{ns}/{cam}/camera_info", qos.SENSOR),
            )
            for cam in p["cameras"]
        }
        on_hand = {c.name for c in self.env.config.camera_specs() if c.on_hand}
        self.pub_calibration = {
            cam: self.create_publisher(PoseStamped, f"{ns}/{cam}/calibrated_pose", qos.LATCHED)
            for cam in p["cameras"]
            if cam not in on_hand
        }
        self.pub_points = (
            self.create_publisher(PointCloud2, p["points_topic"], qos.SENSOR) if p["point_cloud"] else None
        )
        self.pub_refined = {  # each camera's pose the cloud was fused with, as fmb_cloud_fusion names it
            cam: self.create_publisher(PoseStamped, f"{ns}/{cam}/refined_pose", qos.STATE)
            for cam in (p["cameras"] if p["point_cloud"] else [])
        }
        gt = p["ground_truth_namespace"].rstrip("/")
        self.pub_objects = self.create_publisher(PoseArray, f"{gt}/object_poses", qos.STATE)
        self.pub_episode = self.create_publisher(String, f"{gt}/episode", qos.LATCHED)
        self.pub_evaluation = self.create_publisher(DiagnosticStatus, f"{gt}/evaluation", qos.STATE)

        self.create_subscription(PoseStamped, p["equilibrium_pose_topic"], self.on_equilibrium_pose, qos.COMMAND)
        self.create_subscription(JointTrajectory, p["joint_trajectory_topic"], self.on_joint_trajectory, qos.COMMAND)
        self.create_subscription(Float64, p["gripper_command_topic"], self.on_gripper_command, qos.COMMAND)
        self.create_service(Trigger, p["reset_service"], self.on_reset)
        self.add_on_set_parameters_callback(self.on_set_parameters)

        self.in_sim_thread(self.reset_episode, int(p["seed"]))
        # The simulator is the clock source: its loop runs on the steady wall clock even when the
        # node is given use_sim_time (a parameter file may set it for every node).
        steady = rclpy.clock.Clock(clock_type=rclpy.clock.ClockType.STEADY_TIME)
        self.timer = self.create_timer(self.period / float(p["real_time_factor"]), self.on_tick, clock=steady)  # [s]
        self.get_logger().info(
            f"simulating {p['task']} on {p['backend']} at {1 / self.period:g} Hz x{p['real_time_factor']:g}; "
            f"cameras {list(p['cameras']) or 'none'}, point cloud {p['point_cloud']} points"
        )

    def in_sim_thread(self, fn, *args):
        """Run `fn(*args)` on the simulation's thread and return its result (exceptions propagate)."""
        return self._sim_thread.submit(fn, *args).result()

    def destroy_node(self) -> None:
        try:
            self.in_sim_thread(self.env.close)
        finally:
            self._sim_thread.shutdown(wait=True)
        super().destroy_node()

    # -- parameters ------------------------------------------------------------------------------
    def on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == "seed" and (not isinstance(param.value, int) or param.value < 0):
                reason = f"seed must be an integer >= 0, got {param.value!r}"
                return SetParametersResult(successful=False, reason=reason)
            if param.name == "real_time_factor":
                if not isinstance(param.value, float) or not 0.01 <= param.value <= 100.0:
                    return SetParametersResult(
                        successful=False, reason=f"real_time_factor must be in [0.01, 100], got {param.value!r}"
                    )
                self.timer.timer_period_ns = int(self.period / param.value * 1e9)
                self.timer.reset()
        return SetParametersResult(successful=True)

    # -- commands --------------------------------------------------------------------------------
    def on_equilibrium_pose(self, msg: PoseStamped) -> None:
        self.command_times.append(time.perf_counter())
        pose, frame, _ = convert.pose_stamped_array(msg)
        if frame != self.base_frame:
            self.get_logger().warning(
                f"ignored equilibrium pose in frame {frame!r}; expected {self.base_frame!r}", throttle_duration_sec=2.0
            )
            return
        if not np.all(np.isfinite(pose)) or np.linalg.norm(pose[3:]) < 1e-6:
            self.get_logger().warning(f"ignored non-finite equilibrium pose {pose.tolist()}", throttle_duration_sec=2.0)
            return
        self.target = pose
        self.trajectory = None

    def on_joint_trajectory(self, msg: JointTrajectory) -> None:
        """Follow the waypoints in joint space as ros2_control's JointTrajectoryController would; the
        simulated arm has the Cartesian impedance controller only, so each tick's joint sample is
        turned into a TCP target by forward kinematics (the elbow's null-space posture may differ)."""
        if not msg.points:  # an empty trajectory stops, as in ros2_control
            self.trajectory = None
            self.target = self.env.last_observation[TCP_POSE].astype(float)
            return
        try:
            current = self.env.last_observation["q"].astype(float)
            self.trajectory = plan_from_msg(msg, self.arm_joints, current, self.sim_time)
        except ConversionError as e:
            self.get_logger().warning(f"ignored joint trajectory: {e}", throttle_duration_sec=2.0)

    def on_gripper_command(self, msg: Float64) -> None:
        if np.isfinite(msg.data):
            self.close_gripper = msg.data < self.gripper_open / 2

    def on_reset(self, request, response):
        seed = int(self.get_parameter("seed").value)
        try:
            self.in_sim_thread(self.reset_episode, seed)
        except Exception as e:  # noqa: BLE001 - report to the caller, keep serving
            response.success, response.message = False, f"reset with seed {seed} failed: {type(e).__name__}: {e}"
            self.get_logger().error(response.message)
            return response
        info = self.env.episode.info
        response.success = True
        response.message = f"seed {seed}: " + ", ".join(f"{k}={info[k]}" for k in ("peg", "family") if k in info)
        return response

    # -- simulation ------------------------------------------------------------------------------
    def reset_episode(self, seed: int) -> None:
        self.env.reset(seed=seed)
        start = self.env.episode
        self.object_keys = [o.key for o in start.objects]
        self.target = self.env.last_observation[TCP_POSE].astype(float)
        self.trajectory: JointTrajectoryPlan | None = None
        self.close_gripper = bool(start.warmup[-1][1]) if start.warmup else bool(start.gripper_closed)
        self.evaluation = {"success": False, "failed": False, "progress": 0.0, "steps": 0}
        self.episode_json = ""
        self.seed = seed
        for cam, pub in self.pub_calibration.items():  # this episode's calibration, as a lab's file holds it
            pub.publish(convert.pose_stamped_msg(self.env.calibrated_camera_pose(cam), self.base_frame, self.sim_time))
        self.publish_state()
        self.get_logger().info(f"reset: task {self.params['task']} seed {seed}")

    def on_tick(self) -> None:
        self.in_sim_thread(self._step)

    def _step(self) -> None:
        from sim.exceptions import SimError

        if self.trajectory is not None:
            q = self.trajectory.sample(self.sim_time + self.period)
            self.target = self.env.backend.forward_kinematics(q)[0]
            if self.sim_time + self.period >= self.trajectory.end_time:
                self.trajectory = None  # done: hold the last waypoint's pose
        try:
            _, _, _, _, info = self.env.step_pose(self.target, self.close_gripper)
        except SimError as e:
            self.get_logger().error(f"simulation step failed ({e}); holding until the next reset")
            return
        self.sim_time += self.period
        self.evaluation = {
            "success": bool(info["success"]),
            "failed": bool(info["failed"]),
            "progress": float(info["progress"]),
            "steps": int(info["steps"]),
        }
        self.publish_state()

    def publish_state(self) -> None:
        t, base = self.sim_time, self.base_frame
        obs = self.env.last_observation
        self.pub_joints.publish(convert.joint_state_msg(self.arm_joints, obs["q"], obs["dq"], seconds=t))
        width = float(obs["gripper"][0])
        self.pub_gripper.publish(convert.joint_state_msg(self.finger_joints, [width / 2, width / 2], seconds=t))
        self.pub_tcp.publish(convert.pose_stamped_msg(obs[TCP_POSE], base, t))
        self.pub_twist.publish(convert.twist_msg(obs["tcp_vel"], base, t))
        self.pub_wrench.publish(convert.wrench_msg(obs["wrench"], self.tcp_frame, t))
        specs = {c.name: c for c in self.env.config.camera_specs()}
        for cam, (pub_rgb, pub_depth, pub_info) in self.pub_cameras.items():
            frame = f"{cam}_optical_frame"
            pub_rgb.publish(convert.image_msg(obs[f"rgb/{cam}"], frame, t))
            pub_depth.publish(convert.image_msg(obs[f"depth/{cam}"], frame, t))
            spec = specs[cam]
            pub_info.publish(convert.camera_info_msg(spec.width, spec.height, spec.fovy, frame, t))
        if self.pub_points is not None:  # the poses first: a reader of the cloud finds them there
            for cam, pose in self.env.fused_camera_poses.items():
                self.pub_refined[cam].publish(convert.pose_stamped_msg(pose, base, t))
            self.pub_points.publish(convert.point_cloud_msg(obs["points"], base, t))
        # Privileged state, then the clock (so that a tick woken by the clock sees this step).
        info = dict(self.env.episode.info, object_keys=self.object_keys, seed=self.seed)
        text = convert.to_json(info)
        if text != self.episode_json:
            self.episode_json = text
            self.pub_episode.publish(String(data=text))
        poses = [self.env.object_pose(k) for k in self.object_keys]
        self.pub_objects.publish(convert.pose_array_msg(poses, base, t))
        ev = self.evaluation
        level = "ok" if ev["success"] else ("error" if ev["failed"] else "warn")
        message = "success" if ev["success"] else ("failed" if ev["failed"] else "in progress")
        values = dict(ev, task=self.params["task"], seed=self.seed, time=t)
        info = self.env.episode.info
        if "stage_names" in info:  # chain tasks: the stage now running (advances as stages succeed)
            values.update(stage=int(info["stage"]), stage_name=info["stage_names"][int(info["stage"])])
        self.pub_evaluation.publish(convert.status_msg(f"sim/{self.params['task']}", level, message, values))
        self.pub_clock.publish(Clock(clock=convert.to_stamp(t)))
        self.step_times.append(time.perf_counter())


def main(args=None) -> None:
    from fmb_ros.spin import exit_process, spin_nodes

    exit_process(spin_nodes(args, SimRobotNode))


if __name__ == "__main__":
    main()
