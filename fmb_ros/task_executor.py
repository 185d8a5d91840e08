"""`fmb_task_executor`: runs a multi-stage task (YAML, see `fmb_ros.task_plan`) through skill servers.

Call `~/start` (std_srvs/Trigger) to load `task_file` and run it: for each stage, publish the goal
on `/<skill>_skill/goal` (`skill_namespace` format), wait for that skill's next result on
`.../result`, retry a failed stage up to its `retries`, and stop at the first stage that still
fails. `~/report` (diagnostic_msgs/DiagnosticStatus, latched) says which stage failed and why, or
that every stage succeeded; `~/cancel` (Trigger) stops the task and the running skill. A task file
with an unknown skill, a missing file or a bad target is refused at `~/start` with the reason, and the
node keeps running.

Object targets (`target: {object: peg}`) come from the simulator's ground truth
(`<ground_truth_namespace>/object_poses`) and, with `perception_namespace` set, from the
perception node (`fmb_perception`: objects `board`, `peg` and `hole`, the target hole), whose
estimates take precedence; on a real robot only perception provides them.
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
from fmb_ros.params import declare_all
from fmb_ros.task_plan import Stage, TaskPlan, load_plan

PARAMETERS: dict[str, tuple[object, str]] = {
    "task_file": ("", "YAML task description (see fmb_ros/task_plan.py)"),
    "skill_namespace": ("/{skill}_skill", "namespace of each skill server ({skill} is replaced)"),
    "base_frame": ("panda_link0", "frame of the goals"),
    "ground_truth_namespace": ("ground_truth", "where object poses for `target: {object: ...}` come from"),
    "perception_namespace": ("", "fmb_perception's namespace (e.g. /fmb_perception): board, peg, hole poses"),
    "start_service": ("~/start", "std_srvs/Trigger: load task_file and run it"),
    "cancel_service": ("~/cancel", "std_srvs/Trigger: stop the task and the running skill"),
    "report_topic": ("~/report", "diagnostic_msgs/DiagnosticStatus out (latched): progress and outcome"),
}


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
        gt = p["ground_truth_namespace"].rstrip("/")
        if gt:
            self.create_subscription(String, f"{gt}/episode", self.on_episode, qos.LATCHED)
            self.create_subscription(PoseArray, f"{gt}/object_poses", self.on_object_poses, qos.STATE)
        self.perceived: dict[str, np.ndarray] = {}
        ns = p["perception_namespace"].rstrip("/")
        if ns:
            for key, topic in (("board", "board_pose"), ("peg", "peg_pose"), ("hole", "target_hole")):
                self.create_subscription(PoseStamped, f"{ns}/{topic}", self._on_perceived(key), qos.STATE)
        self.pub_report = self.create_publisher(DiagnosticStatus, p["report_topic"], qos.LATCHED)
        self.create_service(Trigger, p["start_service"], self.on_start)
        self.create_service(Trigger, p["cancel_service"], self.on_cancel)
        self.timer = self.create_timer(0.1, self.on_tick)  # [s] on the node's clock

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_episode(self, msg: String) -> None:
        self.object_keys = list(convert.from_json(msg.data).get("object_keys", []))

    def on_object_poses(self, msg: PoseArray) -> None:
        poses = convert.pose_array_arrays(msg)
        if len(poses) == len(self.object_keys):
            self.objects = {**dict(zip(self.object_keys, poses)), **self.perceived}

    def _on_perceived(self, key: str):
        def callback(msg: PoseStamped) -> None:
            pose, frame, _ = convert.pose_stamped_array(msg)
            if frame == self.params["base_frame"]:
                self.perceived[key] = pose
                self.objects[key] = pose

        return callback

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
        self.deadline = self.now() + plan.stages[0].timeout
        self._send()
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
        if not self.goal_sent:
            if self.now() > self.deadline:
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
            self.deadline = self.now() + self.plan.stages[self.index].timeout
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

    def _send(self) -> None:
        stage = self.plan.stages[self.index]
        self.goal_sent = False
        if stage.target_object:
            if stage.target_object not in self.objects:  # wait for it until the stage's timeout
                known = ", ".join(self.objects) or "none yet"
                self.waiting = f"no pose of object {stage.target_object!r} (known: {known})"
                return
            pose = self.objects[stage.target_object]
        else:
            pose = np.asarray(stage.target_pose)
        self.results_before = len(self.results[stage.skill])
        now = self.now()
        self.sent += 1
        goal = convert.pose_stamped_msg(pose, self.params["base_frame"], now + self.sent * 1e-9)  # unique stamp
        self.goal_stamp = f"{goal.header.stamp.sec}.{goal.header.stamp.nanosec:09d}"
        self.goals[stage.skill].publish(goal)
        self.goal_sent = True
        self.report("ok", "running", f"stage {self.index} ({stage.skill}) attempt {self.attempt + 1}")

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
