"""`fmb_recorder`: demonstrations from the robot's topics into episode stores, at the control rate.

Subscribes to the robot's state, wrench, gripper, cameras and point cloud and to the commanded target (the
topics and their conversion are `sim.recording.TopicMap`'s, the ones `fmb data import-bag` reads)
and feeds `sim.recorder.EpisodeRecorder`, the core the bag import replays through: the same
nearest-before alignment within `tolerance`, stale steps counted per topic and never filled.

    ~/start   (std_srvs/Trigger)  begin an episode (the newest message of every topic seeds it)
    ~/stop    (std_srvs/SetBool)  stop and keep it; `data` is the operator's success flag
    ~/discard (std_srvs/Trigger)  drop the episode in progress

Episodes go to `<store>/<task>/` (an `sim.store.EpisodeStore` per skill, as `fmb data import-fmb`
writes them), labelled with the `task` and `object` parameters (settable between episodes). An
episode is committed atomically at ~/stop, cut at stale steps into runs of good steps (never
padded): a crash loses at most the episode in progress.
"""

from __future__ import annotations

import importlib
import threading
import time
import zlib
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger

from fmb_core.errors import FmbError, ParameterError, check_range
from fmb_ros import convert, qos
from fmb_ros.params import declare_all
from sim.recorder import EpisodeRecorder
from sim.recording import TopicMap

PARAMETERS: dict[str, tuple[object, str]] = {
    "store": ("", "folder of the episode stores: episodes go to <store>/<task>/ (created, or resumed); required"),
    "task": ("teleop", "skill label of the next episodes (grasp, insert, ...): their store and meta"),
    "object": ("", "object label of the next episodes (e.g. peg_round_M_long), in their meta"),
    "rate": (10.0, "control rate of the recorded steps [Hz]"),
    "tolerance": (0.15, "largest age of a message used at a step [s]; older: the step is stale"),
    "min_steps": (2, "shorter runs of good steps are not kept"),
    "cameras": ([], "cameras whose colour images to record (<camera_namespace>/<cam>/<rgb_topic>, rgb8/bgr8)"),
    "depth": (False, "also record <camera_namespace>/<cam>/<depth_topic> (32FC1 [m] or 16UC1 [mm])"),
    "camera_namespace": ("camera", "prefix of the camera topics"),
    "rgb_topic": ("image_raw", "each camera's colour image in <camera_namespace>/<cam>/ (realsense: color/image_raw)"),
    "depth_topic": ("depth", "each camera's depth image (realsense: aligned_depth_to_color/image_raw)"),
    "points": (0, "points per recorded cloud from points_topic, each resampled to it (0 = no cloud)"),
    "points_topic": ("points", "sensor_msgs/PointCloud2 in: fused cloud in the base frame [m], float32 xyz + rgb"),
    "joint_states_topic": ("joint_states", "sensor_msgs/JointState in: 7 arm joints [rad, rad/s]"),
    "tcp_pose_topic": ("tcp_pose", "geometry_msgs/PoseStamped in: measured TCP pose in the base frame [m]"),
    "tcp_twist_topic": ("tcp_twist", "geometry_msgs/TwistStamped in: TCP velocity in the base frame [m/s, rad/s]"),
    "wrench_topic": ("wrench", "geometry_msgs/WrenchStamped in: hand wrench in the TCP frame [N, N m]"),
    "gripper_state_topic": ("gripper/joint_states", "sensor_msgs/JointState in: two finger joints [m]"),
    "equilibrium_pose_topic": ("equilibrium_pose", "geometry_msgs/PoseStamped in: the commanded target [m]"),
    "gripper_command_topic": ("gripper/command", "std_msgs/Float64 in: the commanded finger opening [m]"),
    "start_service": ("~/start", "std_srvs/Trigger: begin an episode"),
    "stop_service": ("~/stop", "std_srvs/SetBool: stop and keep the episode; data = the operator's success flag"),
    "discard_service": ("~/discard", "std_srvs/Trigger: drop the episode in progress"),
    "status_topic": ("~/status", "diagnostic_msgs/DiagnosticStatus out, every tick: state, steps, stale steps"),
}
READ_ONLY = tuple(k for k in PARAMETERS if k not in ("task", "object"))


def _message_class(msgtype: str):
    """ "sensor_msgs/msg/JointState" -> the rclpy message class."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class RecorderNode(Node):
    """See module docstring."""

    def __init__(self, **kwargs):
        super().__init__("fmb_recorder", **kwargs)
        self.params = p = declare_all(self, PARAMETERS, READ_ONLY)
        if not p["store"]:
            raise ParameterError("store is required: the folder the episode stores go to", "store")
        check_range("rate", p["rate"], 0.1, 1000.0, unit="Hz")
        check_range("tolerance", p["tolerance"], 0.0, 60.0, unit="s")
        check_range("min_steps", p["min_steps"], 1, 1_000_000)
        self.topics = TopicMap(
            **{f: p[f"{f}_topic"] for f in ("joint_states", "tcp_pose", "tcp_twist", "wrench")},
            gripper_state=p["gripper_state_topic"],
            equilibrium_pose=p["equilibrium_pose_topic"],
            gripper_command=p["gripper_command_topic"],
            camera_namespace=p["camera_namespace"],
            rgb_topic=p["rgb_topic"],
            depth_topic=p["depth_topic"],
            cameras=tuple(p["cameras"]),
            depth=bool(p["depth"]),
            points=p["points_topic"],
            point_count=int(p["points"]),
        )
        self.lock = threading.Lock()
        self.recorder: EpisodeRecorder | None = None
        self.latest: dict[str, tuple[float, object]] = {}
        self.started_at = 0.0
        self.last_result = "idle"
        for stream in self.topics.streams():
            profile = qos.SENSOR if stream.msgtype.endswith(("/Image", "/PointCloud2")) else qos.STATE
            self.create_subscription(
                _message_class(stream.msgtype), stream.topic.lstrip("/"), lambda m, s=stream: self.on_message(s, m),
                profile,
            )  # fmt: skip
        self.create_service(Trigger, p["start_service"], self.on_start)
        self.create_service(SetBool, p["stop_service"], self.on_stop)
        self.create_service(Trigger, p["discard_service"], self.on_discard)
        self.pub_status = self.create_publisher(DiagnosticStatus, p["status_topic"], qos.STATE)
        self.timer = self.create_timer(1.0 / float(p["rate"]), self.on_tick)  # [s]
        self.get_logger().info(f"recording into {p['store']}/<task>/ at {p['rate']} Hz on ~/start")

    def now(self) -> float:
        """The node clock [s] (sim time under use_sim_time): every message's receive time and every tick."""
        return self.get_clock().now().nanoseconds * 1e-9

    def on_message(self, stream, msg) -> None:
        try:
            value = stream.convert(msg)
        except FmbError as e:
            self.get_logger().warn(f"{stream.topic}: {e}", throttle_duration_sec=5.0)
            return
        t = self.now()
        with self.lock:
            self.latest[stream.key] = (t, value)
            if self.recorder is not None:
                self.recorder.add(stream.key, t, value)

    def on_tick(self) -> None:
        with self.lock:
            recorder = self.recorder
            if recorder is not None:
                recorder.tick(self.now())
                steps, waiting, stale = recorder.steps, recorder.waiting(), recorder.stale_counts()
        if recorder is None:
            self.publish_status("ok", self.last_result, {"recording": False})
        elif waiting:
            self.publish_status("warn", f"waiting for {', '.join(waiting)}", {"recording": True, "steps": 0})
        else:
            values = {"recording": True, "steps": steps, **{f"stale {t}": n for t, n in stale.items()}}
            self.publish_status("warn" if stale else "ok", "recording", values)

    def on_start(self, request, response):
        with self.lock:
            if self.recorder is not None:
                response.success, response.message = False, "already recording: ~/stop or ~/discard first"
                return response
            self.recorder = EpisodeRecorder(self.topics, float(self.params["rate"]), float(self.params["tolerance"]))
            for key, (t, value) in self.latest.items():
                self.recorder.add(key, t, value)
            self.started_at = time.time()
        response.success, response.message = True, "recording"
        return response

    def on_discard(self, request, response):
        with self.lock:
            had, self.recorder = self.recorder is not None, None
        self.last_result = "discarded" if had else self.last_result
        response.success, response.message = had, "discarded" if had else "not recording"
        return response

    def on_stop(self, request, response):
        with self.lock:
            recorder, self.recorder = self.recorder, None
        if recorder is None:
            response.success, response.message = False, "not recording"
            return response
        try:
            kept, message = self.keep(recorder, bool(request.data))
        except FmbError as e:
            kept, message = 0, f"not kept: {e}"
        self.last_result = message
        self.get_logger().info(message)
        response.success, response.message = kept > 0, message
        return response

    def keep(self, recorder: EpisodeRecorder, success: bool) -> tuple[int, str]:
        """Commit the recording's runs of good steps; return (episodes kept, a one-line report)."""
        from sim.store import EpisodeStore

        steps = recorder.finish()
        task, obj = str(self.get_parameter("task").value), str(self.get_parameter("object").value)
        runs = steps.episodes(int(self.params["min_steps"]))
        stale = f"; stale steps {steps.stale}" if steps.stale else ""
        if not runs:
            return 0, f"nothing kept: {len(steps.bad)} steps, none in a run of {self.params['min_steps']} good{stale}"
        alignment = {"tolerance": float(self.params["tolerance"]), "stamps": "receive", "rule": "nearest-before"}
        store_meta = {
            "task": task,
            "backend": "real",
            "fps": float(self.params["rate"]),
            "source": "fmb_recorder",
            "cameras": list(self.topics.cameras),
            "topics": {s.key: s.topic for s in self.topics.streams()},
            "alignment": alignment,
        }
        store = EpisodeStore.create(Path(self.params["store"]) / task, store_meta)
        for i, (a, b) in enumerate(runs):
            meta = {
                "seed": zlib.crc32(f"{self.started_at}#{i}".encode()) & 0x7FFFFFFF,
                "task": task,
                "success": success,
                "object": obj,
                "source": "fmb_recorder",
                "recorded_at": self.started_at,
                "run": i,
                "run_steps": [a, b],
                "stale_steps": steps.stale,
            }
            store.append({k: v[a:b] for k, v in steps.data.items()}, meta)
        lengths = ", ".join(str(b - a) for a, b in runs)
        return len(runs), f"kept {len(runs)} episode(s) of {lengths} steps in {store.root}, success={success}{stale}"

    def publish_status(self, level: str, message: str, values: dict) -> None:
        self.pub_status.publish(convert.status_msg(self.get_name(), level, message, values))


def main(args=None) -> None:
    from fmb_ros.spin import exit_process, spin_nodes

    exit_process(spin_nodes(args, RecorderNode))


if __name__ == "__main__":
    main()
