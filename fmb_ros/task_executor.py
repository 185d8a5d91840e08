"""`fmb_task_executor`: runs a multi-stage task (YAML, see `fmb_ros.task_plan`) through skill servers.

Call `~/start` (std_srvs/Trigger) to load `task_file` and run it: for each stage, publish the goal
on `/<skill>_skill/goal` (`skill_namespace` format), wait for that skill's next result on
`.../result`, retry a failed stage up to its `retries`, and stop at the first stage that still
fails. `~/report` (diagnostic_msgs/DiagnosticStatus, latched) says which stage failed and why, or
that every stage succeeded; `~/cancel` (Trigger) stops the task and the running skill. A task file
with an unknown skill, a missing file or a bad target is refused at `~/start` with the reason, and the
node keeps running.

Object targets (`target: {object: peg}`, `fmb_ros.task_plan.TARGET_OBJECTS`) come from the
simulator's ground truth (`<ground_truth_namespace>/object_poses`; `pocket` is the fixture's pose
composed with its pocket frame, `sim.tasks.fixture_layout.pocket_frame`) and, with
`perception_namespace` set, from the perception node (`fmb_perception`: `board`, `peg`, `hole` the
target hole, `fixture` and `pocket`), whose estimates take precedence; on a real robot only
perception provides them.

A stage with `retreat` (by default regrasp, `sim.experts.chain.RETREATED`) first moves the open hand
away from the peg it let go of, along `sim.experts.chain.retreat_path` (`fmb_ros.retreat`): one
equilibrium pose per tick on `equilibrium_pose_topic`, from the measured `tcp_pose_topic`, until the
hand has settled at the path's end. Only then is the stage's target resolved, and with perception
only from an estimate of a cloud taken after the hand got there: at a regrasp's start the hand is
still beside the peg and hides the fixture from the cameras, so an earlier estimate is wrong. Why
here and not in the regrasp skill server: the goal a skill server gets is the target the executor
resolved, so the view must be clear before the executor looks; the move is the planner's, not the
skill's (as in `fmb eval`, where the chain retreats before the regrasp controller is reset and its
steps do not count towards the stage's), and it uses the robot's Cartesian impedance interface,
which skill servers command too. The retreat's time does not count towards the stage's `timeout`
once it is over (the stage's deadline restarts), but a retreat that outlasts it fails the stage.

With `held_peg_topic` (fmb_perception's `~/held_peg`, which the skill servers read too), a stage
whose skill's goal is built with the held peg (rotate, insert: `fmb_ros.held_peg.holds_peg`) sends
its goal once an estimate of a cloud taken after the stage began (the grasp or previous stage over)
has arrived, as `fmb eval --goals perceived` estimates on a cloud rendered at the stage's start;
without the wait the goal would find only an estimate from before the fingers closed, as perception
takes seconds. After `held_peg_wait` the goal goes anyway (logged and reported; the skill server then
takes the grasp command and says why); that wait, like a retreat, does not count towards `timeout`.
"""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from fmb_core.errors import FmbError
from fmb_ros import convert, qos
from fmb_ros.held_peg import HeldPegWait, holds_peg
from fmb_ros.params import declare_all
from fmb_ros.retreat import RetreatMove
from fmb_ros.task_plan import Stage, TaskPlan, ground_truth_objects, load_plan

PARAMETERS: dict[str, tuple[object, str]] = {
    "task_file": ("", "YAML task description (see fmb_ros/task_plan.py)"),
    "skill_namespace": ("/{skill}_skill", "namespace of each skill server ({skill} is replaced)"),
    "base_frame": ("panda_link0", "frame of the goals"),
    "ground_truth_namespace": ("ground_truth", "where object poses for `target: {object: ...}` come from"),
    "perception_namespace": (
        "",
        "fmb_perception's namespace (e.g. /fmb_perception): board, peg, hole, fixture, pocket poses",
    ),
    "tcp_pose_topic": ("tcp_pose", "geometry_msgs/PoseStamped in: measured TCP pose (where a retreat starts)"),
    "equilibrium_pose_topic": ("equilibrium_pose", "geometry_msgs/PoseStamped out: a retreat's poses, one per tick"),
    "held_peg_topic": (
        "",
        "geometry_msgs/PoseStamped in: fmb_perception's held peg (its ~/held_peg); a rotate or insert goal waits for "
        "one of a cloud taken after its stage began (empty: no wait)",
    ),
    "held_peg_wait": (8.0, "the longest such wait [s], then the goal goes (0 = no wait)"),
    "start_service": ("~/start", "std_srvs/Trigger: load task_file and run it"),
    "cancel_service": ("~/cancel", "std_srvs/Trigger: stop the task and the running skill"),
    "report_topic": ("~/report", "diagnostic_msgs/DiagnosticStatus out (latched): progress and outcome"),
}
PERCEIVED_TOPICS = {
    "board": "board_pose",
    "peg": "peg_pose",
    "hole": "target_hole",
    "fixture": "fixture_pose",
    "pocket": "pocket",
}
"""Target object (`fmb_ros.task_plan.TARGET_OBJECTS`) -> its topic under `perception_namespace`."""
PERIOD = 0.1
"""[s] The executor's tick on the node's clock (FMB's 10 Hz control period): one retreat pose each."""


class TaskExecutorNode(Node):
    """See module docstring."""

    def __init__(self, node_name: str = "fmb_task_executor", **kwargs):
        super().__init__(node_name, **kwargs)
        p = self.params = declare_all(self, PARAMETERS, read_only=tuple(PARAMETERS))
        self.plan: TaskPlan | None = None
        self.index = 0
        self.attempt = 0
        self.deadline = 0.0
        self.results_before = 0
        self.state = "idle"
        self.outcomes: list[str] = []
        self.results: dict[str, list] = {}
        self.goals: dict[str, object] = {}
        self.cancels: dict[str, object] = {}
        self.object_keys: list[str] = []
        self.objects: dict[str, np.ndarray] = {}
        self.goal_stamp = ""
        self.sent = 0
        self.goal_sent = False
        self.waiting = ""
        self.tcp: np.ndarray | None = None
        self.retreat: RetreatMove | None = None
        self.cleared_at: float | None = None  # when this stage's retreat ended [s, node clock]
        gt = p["ground_truth_namespace"].rstrip("/")
        if gt:
            self.create_subscription(String, f"{gt}/episode", self.on_episode, qos.LATCHED)
            self.create_subscription(PoseArray, f"{gt}/object_poses", self.on_object_poses, qos.STATE)
        self.perceived: dict[str, np.ndarray] = {}
        self.perceived_at: dict[str, float] = {}  # the stamp (the cloud's time) of each [s]
        self.perception = p["perception_namespace"].rstrip("/")
        if self.perception:
            for key, topic in PERCEIVED_TOPICS.items():
                self.create_subscription(PoseStamped, f"{self.perception}/{topic}", self._on_perceived(key), qos.STATE)
        self.create_subscription(PoseStamped, p["tcp_pose_topic"], self.on_tcp_pose, qos.STATE)
        self.held_peg = HeldPegWait(p["held_peg_wait"])
        if p["held_peg_topic"]:
            self.create_subscription(PoseStamped, p["held_peg_topic"], self.on_held_peg, qos.STATE)
        self.pub_pose = self.create_publisher(PoseStamped, p["equilibrium_pose_topic"], qos.COMMAND)
        self.pub_report = self.create_publisher(DiagnosticStatus, p["report_topic"], qos.LATCHED)
        self.create_service(Trigger, p["start_service"], self.on_start)
        self.create_service(Trigger, p["cancel_service"], self.on_cancel)
        self.timer = self.create_timer(PERIOD, self.on_tick)  # [s] on the node's clock

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_episode(self, msg: String) -> None:
        self.object_keys = list(convert.from_json(msg.data).get("object_keys", []))

    def on_object_poses(self, msg: PoseArray) -> None:
        poses = convert.pose_array_arrays(msg)
        if len(poses) == len(self.object_keys):
            self.objects = {**ground_truth_objects(self.object_keys, poses), **self.perceived}

    def _on_perceived(self, key: str):
        def callback(msg: PoseStamped) -> None:
            pose, frame, stamp = convert.pose_stamped_array(msg)
            if frame == self.params["base_frame"]:
                self.perceived[key] = pose
                self.perceived_at[key] = stamp
                self.objects[key] = pose

        return callback

    def on_tcp_pose(self, msg: PoseStamped) -> None:
        pose, frame, _ = convert.pose_stamped_array(msg)
        if frame == self.params["base_frame"]:
            self.tcp = pose

    def on_held_peg(self, msg: PoseStamped) -> None:
        self.held_peg.on_estimate(convert.pose_stamped_array(msg)[2])

    # -- start / cancel --------------------------------------------------------------------------
    def on_start(self, request, response):
        from policies.runtime.controllers import skill_names

        if self.state == "running":
            response.success, response.message = False, f"already running stage {self.index}"
            return response
        try:
            plan = load_plan(self.params["task_file"], skill_names())
        except FmbError as e:
            response.success, response.message = False, f"task refused: {e}"
            self.state = "rejected"
            self.report("error", "rejected", response.message)
            self.get_logger().warning(response.message)
            return response
        self.plan, self.index, self.attempt, self.outcomes = plan, 0, 0, []
        for stage in plan.stages:
            self._connect(stage.skill)
        self.state = "running"
        self._begin_stage()
        response.success, response.message = True, f"task {plan.name}: {len(plan.stages)} stages"
        return response

    def on_cancel(self, request, response):
        if self.state != "running":
            response.success, response.message = False, f"nothing to cancel (state {self.state})"
            return response
        skill = self.plan.stages[self.index].skill
        self.cancels[skill].call_async(Trigger.Request())
        self._finish("warn", "canceled", f"canceled at stage {self.index} ({skill})")
        response.success, response.message = True, "canceled"
        return response

    # -- the stage loop --------------------------------------------------------------------------
    def on_tick(self) -> None:
        if self.state != "running":
            return
        stage = self.plan.stages[self.index]
        results = self.results[stage.skill]
        if self.retreat is not None or (stage.retreat and self.cleared_at is None):
            self._retreat_tick(stage)
        elif not self.goal_sent:
            if self.now() > self.deadline and not self.held_peg.waiting:
                self._finish("error", "failed", f"stage {self.index} ({stage.skill}): {self.waiting}")
            else:
                self._send()
        elif len(results) > self.results_before:
            msg = results[self.results_before]
            values = convert.status_values(msg)
            self._outcome(stage, values.get("state", "?"), msg.message)
        elif self.now() > self.deadline:
            self.cancels[stage.skill].call_async(Trigger.Request())
            self._outcome(stage, "timeout", f"no result within {stage.timeout:g} s")

    def _outcome(self, stage: Stage, state: str, message: str) -> None:
        label = f"stage {self.index} ({stage.skill}) attempt {self.attempt + 1}: {state}"
        self.outcomes.append(label)
        self.get_logger().info(f"{label}: {message}")
        if state == "succeeded":
            self.index, self.attempt = self.index + 1, 0
            if self.index == len(self.plan.stages):
                self._finish("ok", "succeeded", f"task {self.plan.name}: all {self.index} stages succeeded")
                return
            self._begin_stage()
            return
        elif self.attempt < stage.retries:
            self.attempt += 1
            self.deadline = self.now() + stage.timeout
        else:
            self._finish(
                "error",
                "failed",
                f"task {self.plan.name} failed at stage {self.index} ({stage.skill}) after "
                f"{self.attempt + 1} attempt(s): {state}: {message}",
            )
            return
        self._send()

    def _begin_stage(self) -> None:
        """Start the current stage: its retreat first (the next ticks), else its goal now."""
        stage = self.plan.stages[self.index]
        self.deadline = self.now() + stage.timeout
        self.retreat, self.cleared_at, self.goal_sent = None, None, False
        self.held_peg.arm(self.now() if self.params["held_peg_topic"] and holds_peg(stage.skill) else None)
        if stage.retreat:
            self.waiting = "the retreat has not started (no TCP pose yet)"
            self.report("ok", "running", f"stage {self.index} ({stage.skill}): retreating")
            return
        self._send()

    def _retreat_tick(self, stage: Stage) -> None:
        """One tick of the stage's retreat: plan it from the measured TCP, command its next pose,
        and once it is over resolve and send the stage's goal."""
        if self.now() > self.deadline:
            self._finish("error", "failed", f"stage {self.index} ({stage.skill}): retreat: {self.waiting}")
            return
        if self.tcp is None:
            return
        if self.retreat is None:
            self.retreat = RetreatMove.plan(self.tcp)
            self.get_logger().info(
                f"stage {self.index} ({stage.skill}): retreating to {np.round(self.retreat.end[:3], 3).tolist()} m "
                f"({len(self.retreat.poses)} poses)"
            )
        self.waiting = f"the hand did not reach the retreat's end {np.round(self.retreat.end[:3], 3).tolist()} m"
        pose = self.retreat.next(self.tcp)
        if pose is not None:
            self.pub_pose.publish(convert.pose_stamped_msg(pose, self.params["base_frame"], self.now()))
            return
        gap = float(np.linalg.norm(self.tcp[:3] - self.retreat.end[:3])) * 1e3
        self.get_logger().info(f"stage {self.index} ({stage.skill}): retreat over, {gap:.1f} mm from its end")
        self.retreat, self.cleared_at = None, self.now()
        self.deadline = self.now() + stage.timeout  # the retreat is the planner's time, not the skill's
        self._send()

    def _target_pose(self, name: str) -> np.ndarray | None:
        """The pose of target object `name`, None (and `waiting` says why) while there is none to
        use: after a retreat, a perceived one must come from a cloud taken once the view was clear."""
        if name not in self.objects:
            known = ", ".join(self.objects) or "none yet"
            self.waiting = f"no pose of object {name!r} (known: {known})"
            return None
        if self.cleared_at is not None and self.perception and name in PERCEIVED_TOPICS:
            if self.perceived_at.get(name, -np.inf) < self.cleared_at:
                self.waiting = (
                    f"no estimate of {name!r} from {self.perception} of a cloud taken after the retreat "
                    f"(at {self.cleared_at:.1f} s)"
                )
                return None
        return self.objects[name]

    def _send(self) -> None:
        stage = self.plan.stages[self.index]
        self.goal_sent = False
        if stage.target_object:
            pose = self._target_pose(stage.target_object)
            if pose is None:  # wait for it until the stage's timeout
                return
        else:
            pose = np.asarray(stage.target_pose)
        held, where = self.held_peg.check(self.now()), f"stage {self.index} ({stage.skill})"
        if not held.go:  # no held-peg estimate of this stage yet: again next tick, until held_peg_wait
            if held.waited == 0.0:
                self.get_logger().info(f"{where}: {held.note}")
                self.report("ok", "running", f"{where}: {held.note}")
            self.waiting = held.note
            return
        if held.note:
            (self.get_logger().warning if held.timed_out else self.get_logger().info)(f"{where}: {held.note}")
            self.deadline = self.now() + stage.timeout  # the wait is the planner's time, not the skill's
            if held.timed_out:  # kept in the report's history
                self.outcomes.append(f"{where}: no held-peg estimate within {self.held_peg.limit:g} s")
        publisher = self.goals[stage.skill]
        if publisher.get_subscription_count() == 0:  # a goal published before its server is matched is lost
            self.waiting = f"no {stage.skill} skill server subscribes to {publisher.topic_name} yet"
            return
        self.results_before = len(self.results[stage.skill])
        now = self.now()
        self.sent += 1
        goal = convert.pose_stamped_msg(pose, self.params["base_frame"], now + self.sent * 1e-9)  # unique stamp
        self.goal_stamp = f"{goal.header.stamp.sec}.{goal.header.stamp.nanosec:09d}"
        self.goals[stage.skill].publish(goal)
        self.goal_sent = True
        message = f"{where} attempt {self.attempt + 1}" + (f": {held.note}" if held.note else "")
        self.report("warn" if held.timed_out else "ok", "running", message)

    def _connect(self, skill: str) -> None:
        if skill in self.goals:
            return
        ns = self.params["skill_namespace"].format(skill=skill).rstrip("/")
        self.results[skill] = []
        self.create_subscription(DiagnosticStatus, f"{ns}/result", self._on_result(skill), qos.LATCHED)
        self.goals[skill] = self.create_publisher(PoseStamped, f"{ns}/goal", qos.COMMAND)
        self.cancels[skill] = self.create_client(Trigger, f"{ns}/cancel")

    def _on_result(self, skill: str):
        def callback(msg: DiagnosticStatus) -> None:
            # Only the result of the goal this task sent counts (skills echo the goal's stamp).
            if convert.status_values(msg).get("goal_stamp") == self.goal_stamp:
                self.results[skill].append(msg)

        return callback

    def _finish(self, level: str, state: str, message: str) -> None:
        self.state = state
        self.report(level, state, message)
        self.get_logger().info(message)

    def report(self, level: str, state: str, message: str) -> None:
        values = {"state": state, "stage": self.index, "attempt": self.attempt + 1}
        if self.plan is not None:
            values["task"] = self.plan.name
            values["stages"] = len(self.plan.stages)
            if self.index < len(self.plan.stages):
                values["stage_name"] = self.plan.stages[self.index].skill
        values["history"] = "; ".join(self.outcomes)
        self.pub_report.publish(convert.status_msg(self.get_name(), level, message, values))


def main(args=None) -> None:
    from fmb_ros.spin import exit_process, spin_nodes

    exit_process(spin_nodes(args, TaskExecutorNode))


if __name__ == "__main__":
    main()
