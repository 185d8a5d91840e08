"""`fmb_skill_server`: one FMB skill (grasp, place_on_fixture, regrasp, rotate, insert) as a ROS 2 node.

The controller is a trained policy when the `checkpoint` parameter is set (run on `device`:
`auto` = CUDA when present, else CPU; the choice is logged), else the task's scripted expert.
At `rate` (10 Hz, on the node's clock: simulated time with `use_sim_time:=true`) it turns the
newest observation into an action, passes it through the safety filter (`sim.safety`) and
publishes an equilibrium pose and a gripper command. A policy's next chunk is computed in a
background thread (`inference: async`, `policies.runtime.async_runner`), so the tick never waits on it.
With `candidates` > 1 and `select` implicit/explicit, the policy executes the safe candidate that
the preference reward (`reward`, `policies.preference.select`) scores best; a missing or mismatched
reward model is refused like a missing checkpoint (error status, goals rejected, the node stays up).
A GravMap policy's sub-goals are built at each goal from ground truth, else from perceived poses
(`fmb_ros.world.SceneView`), and drawn on `~/markers` with the candidates and their scores.
A policy conditioned on `tcp_goal` (the hand's pose with the held peg in its hole) gets it built
from the goal (the hole) and the peg's pose in the hand chosen by `in_hand` as `fmb eval --goals
perceived` chooses it (`fmb_ros.held_peg`): the grasp command's, or perception's estimate
(`held_peg_topic`, fmb_perception's `~/held_peg`) when recent and, with "checked", when it sees the
peg held elsewhere; status and result say which (`in_hand_source`).

Driving it with stock tools: publish a goal (`geometry_msgs/PoseStamped`, the skill's target in
`base_frame`: the object to grasp, the hole to insert into) on `~/goal`; call `~/cancel`
(`std_srvs/Trigger`) to stop; `~/emergency_stop` (`std_srvs/SetBool`, true latches, false
releases); read `~/status` (every tick) and `~/result` (latched, once per goal), both
`diagnostic_msgs/DiagnosticStatus` with values state, step, score.

Success is judged by the simulator's task check (`<ground_truth_namespace>/evaluation`) when it
is there and `judge` is true; without it (a real robot) a run ends at the step limit as failed. Scripted experts are
privileged: they read object poses and episode facts from `<ground_truth_namespace>/*` (published
by `fmb_sim_robot`), so they run only against the simulator, in the same process or not; the
current controllers find their target in the scene, and the goal pose is checked (frame,
workspace) and recorded.
"""

from __future__ import annotations

import math

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import MarkerArray

from fmb_core.errors import ParameterError, check_choice, check_range
from fmb_ros import convert, qos
from fmb_ros.exceptions import GoalError
from fmb_ros.markers import skill_markers
from fmb_ros.params import declare_all
from fmb_ros.skill import SkillExecution, State
from fmb_ros.skill_inputs import SkillInputs
from fmb_ros.skill_params import COMMAND_INTERFACES, GRIPPER_INTERFACES, JOINT_INTERFACES, LIMIT_NAMES, PARAMETERS
from fmb_ros.world import WorldMirror
from policies.gravmap.conditioner import spec_of
from sim.safety import SafetyFilter, SafetyLimits, Verdict


class SkillServerNode(Node):
    """See module docstring."""

    def __init__(self, node_name: str = "fmb_skill", **kwargs):
        super().__init__(node_name, **kwargs)
        p = self.params = declare_all(self, PARAMETERS, read_only=tuple(PARAMETERS))
        from policies.runtime.controllers import make_controller
        from policies.runtime.runner import RunnerConfig
        from sim.panda import ARM_JOINTS, FINGER_JOINTS, GRIPPER_OPEN

        self.arm_joints, self.finger_joints, self.gripper_open = ARM_JOINTS, FINGER_JOINTS, GRIPPER_OPEN
        check_choice("command_interface", p["command_interface"], COMMAND_INTERFACES)
        check_choice("gripper_interface", p["gripper_interface"], GRIPPER_INTERFACES)
        from fmb_ros.skill import POLICY_GOALS

        check_choice("policy_goal", p["policy_goal"], POLICY_GOALS)
        from fmb_ros.kinematics import IK_SOLVERS

        check_choice("ik_solver", p["ik_solver"], IK_SOLVERS)
        check_range("gripper_force", p["gripper_force"], 1.0, 140.0, unit="N")
        check_range("held_peg_max_age", p["held_peg_max_age"], 0.0, 3600.0, unit="s")
        from sim.perceived_goals import PerceivedGoalConfig

        in_hand = PerceivedGoalConfig(
            in_hand=p["in_hand"], in_hand_offset=p["in_hand_offset"], in_hand_angle=p["in_hand_angle"]
        )
        limits = SafetyLimits(**{k: tuple(p[k]) if isinstance(p[k], list) else p[k] for k in LIMIT_NAMES})
        self.safety = SafetyFilter(limits)
        self.world = WorldMirror()
        self.run: SkillExecution | None = None
        self.error = ""
        rate = check_range("rate", p["rate"], 1.0, 100.0, unit="Hz")
        self.threads = None  # the thread budget (fmb_core.threads), once set
        try:
            from fmb_core.threads import configure
            from policies.runtime.async_runner import AsyncConfig

            self.threads = configure("inference", threads=int(p["threads"]), log=self.get_logger().info)
            inference = AsyncConfig(
                int(p["inference_lead"]), bool(p["inference_adaptive_lead"]), 1.0 / rate,
                int(p["inference_nice"]), int(p["inference_realtime"]),
            )  # fmt: skip
            if p["select"] == "oracle":
                raise ParameterError(
                    "select oracle tries every candidate in the simulator (fmb eval, the ablation); a skill "
                    "server has no simulator to try them in: none, implicit or explicit",
                    "select",
                )
            runner_config = RunnerConfig(
                num_samples=int(p["candidates"]),
                action_horizon=int(p["action_horizon"]),
                guidance=float(p["guidance"]),
                temperature=float(p["temperature"]),
                select=p["select"],
                reward=p["reward"],
            )
            controller = make_controller(
                p["skill"],
                checkpoint=p["checkpoint"],
                device=p["device"],
                seed=int(p["seed"]),
                noise=float(p["noise"]),
                runner_config=runner_config,
                inference=p["inference"],
                async_config=inference,
            )
        except Exception as e:  # noqa: BLE001 - a missing or wrong checkpoint: stay up, say why, refuse goals
            from fmb_ros.params import parameter_message

            self.error = f"cannot run skill {p['skill']!r}: {parameter_message(e)}"
            self.get_logger().error(self.error)
        else:
            self.run = SkillExecution(
                p["skill"],
                controller,
                self.safety,
                p["base_frame"],
                int(p["max_steps"]),
                p["policy_goal"],
                in_hand,
                approach=bool(p["approach"]),
            )
            wrist_turn = p["approach"] and p["skill"] == "rotate"  # plans its long turn by inverse kinematics
            if controller.privileged or wrist_turn or p["command_interface"] in JOINT_INTERFACES:
                from fmb_ros.kinematics import make_kinematics

                self.world.kinematics = make_kinematics(p["ik_solver"])
            switch = check_range("gil_switch_interval", p["gil_switch_interval"], 0.0, 0.1, unit="s")
            if switch and hasattr(controller.runner, "late_chunks"):  # an inference thread beside the executor
                import sys

                sys.setswitchinterval(switch)  # the executor waits at most this long for Python's lock
                self.get_logger().info(f"Python thread switch interval {switch * 1000:g} ms")
            device = f" (device {p['device']} -> {controller.device})" if controller.device else ""
            self.get_logger().info(f"skill {p['skill']}: {controller.description}{device}")

        self.pub_pose = self.create_publisher(PoseStamped, p["equilibrium_pose_topic"], qos.COMMAND)
        self.pub_trajectory = self.create_publisher(JointTrajectory, p["joint_trajectory_topic"], qos.COMMAND)
        from fmb_ros import adapters

        self.follow_trajectory = None
        if p["command_interface"] == "follow_joint_trajectory":
            self.follow_trajectory = adapters.FollowJointTrajectoryOutput(
                self, p["follow_joint_trajectory_action"], self.arm_joints
            )
        if p["gripper_interface"] == "franka_action":
            self.gripper = adapters.FrankaGripperOutput(
                self, p["franka_gripper_namespace"], self.gripper_open, float(p["gripper_force"])
            )
        else:
            self.gripper = adapters.TopicGripperOutput(self, p["gripper_command_topic"], self.gripper_open, qos.COMMAND)
        self.pub_status = self.create_publisher(DiagnosticStatus, p["status_topic"], qos.STATE)
        self.pub_result = self.create_publisher(DiagnosticStatus, p["result_topic"], qos.LATCHED)
        self.pub_markers = self.create_publisher(MarkerArray, p["markers_topic"], qos.STATE)
        self.last_command: np.ndarray | None = None
        self.inputs = SkillInputs(self, p, self.world, self.arm_joints)
        sub = self.create_subscription
        sub(PoseStamped, p["goal_topic"], self.on_goal, qos.COMMAND)
        self.target: PoseStamped | None = None
        self.last_rejection = ""
        if p["target_topic"]:
            sub(PoseStamped, p["target_topic"], self.on_target, qos.STATE)
        self.create_service(Trigger, p["start_service"], self.on_start)
        self.create_service(Trigger, p["cancel_service"], self.on_cancel)
        self.create_service(SetBool, p["emergency_stop_service"], self.on_emergency_stop)
        self.goal_stamp = ""
        self.timer = self.create_timer(1.0 / rate, self.on_tick)  # [s] on the node's clock

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def destroy_node(self) -> None:
        close = getattr(self.run.controller.runner, "close", None) if self.run is not None else None
        if close is not None:  # an asynchronous policy's inference thread
            close()
        super().destroy_node()

    # -- goal, cancel, stop ----------------------------------------------------------------------
    def on_goal(self, msg: PoseStamped) -> bool:
        """Start a run towards the goal; False (and a `rejected` result saying why) when refused."""
        pose, frame, _ = convert.pose_stamped_array(msg)
        # Results echo the goal's stamp, so a client can tell its result from a latched older one.
        stamp = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
        if self.run is None:
            self.publish_result("error", "rejected", f"goal rejected: {self.error}", goal_stamp=stamp)
            return False
        held = self.inputs.held.recent(self.now()) if self.params["held_peg_topic"] else None
        try:
            self.run.start(pose, frame, self.world, self.now(), held)
        except GoalError as e:
            self.get_logger().warning(f"goal rejected: {e}")
            self.publish_result("error", "rejected", f"goal rejected: {e}", goal_stamp=stamp)
            self.last_rejection = str(e)
            return False
        self.goal_stamp = stamp
        self.inputs.evaluation = None
        self.get_logger().info(f"goal accepted: {self.params['skill']} towards {np.round(pose[:3], 3).tolist()} m")
        facts = self.run.goal_facts
        if "in_hand_source" in facts:  # a tcp_goal policy: which in-hand pose its goal was built with
            seen = "; ".join(f"{k[len('in_hand_') :]} {v}" for k, v in facts.items() if k != "in_hand_source")
            self.get_logger().info(f"in-hand pose of the peg: {facts['in_hand_source']} ({seen or 'no estimate read'})")
        self.publish_status()
        return True

    def on_target(self, msg: PoseStamped) -> None:
        """The newest target from perception; also kept in the world view (GravMap sub-goals)."""
        self.target = msg
        pose, _, _ = convert.pose_stamped_array(msg)
        self.world.perceived["target"] = pose

    def on_start(self, request, response):
        """Run towards the newest pose on `target_topic`, checked as a goal (frame, workspace)."""
        if not self.params["target_topic"]:
            response.success, response.message = False, "no target_topic set: send a goal on ~/goal instead"
            return response
        if self.target is None:
            response.success, response.message = False, f"no target on {self.params['target_topic']} yet"
            return response
        response.success = self.on_goal(self.target)
        if response.success:
            response.message = f"running towards the target from {self.params['target_topic']}"
        else:
            response.message = f"goal rejected: {self.error or self.last_rejection}"
        return response

    def on_cancel(self, request, response):
        if self.run is None:
            response.success, response.message = False, self.error
            return response
        tick = self.run.cancel(self.world, "canceled by request")
        self.send(tick.command)
        response.success = tick.changed
        response.message = "canceled; holding" if tick.changed else f"nothing to cancel (state {self.run.state.value})"
        if tick.changed:
            self.publish_result("warn", State.CANCELED.value, self.run.message)
        return response

    def on_emergency_stop(self, request, response):
        if request.data:
            self.safety.engage_stop("emergency_stop service")
            self.send(self.safety.hold(self.world.tcp, Verdict.STOPPED, "emergency stop"))
            response.message = "emergency stop engaged (latched until released)"
            self.get_logger().warning(response.message)
        else:
            self.safety.release_stop()
            response.message = "emergency stop released"
            self.get_logger().info(response.message)
        response.success = True
        self.publish_status()
        return response

    # -- the command loop ------------------------------------------------------------------------
    def on_tick(self) -> None:
        if self.run is None:
            self.publish_status()
            return
        tick = self.run.tick(self.world, self.now(), self.inputs.judgement(self.run.started_at))
        self.send(tick.command)
        self.publish_status()
        self.publish_markers()
        if tick.changed:
            level = "ok" if tick.state is State.SUCCEEDED else "error"
            self.publish_result(level, tick.state.value, self.run.message)
            self.get_logger().info(f"{self.params['skill']} {tick.state.value}: {self.run.message}")

    def send(self, cmd) -> None:
        if cmd is None or cmd.pose is None:
            return
        if self.params["command_interface"] in JOINT_INTERFACES:
            q = self.world.kinematics.inverse(cmd.pose, self.world.q, q_rest=self.world.q_rest, margin=0.0)
            if q is None:
                self.get_logger().warning(
                    f"no joint solution for {np.round(cmd.pose, 4).tolist()}; holding", throttle_duration_sec=2.0
                )
                return
            period = 1.0 / float(self.params["rate"])
            if self.follow_trajectory is not None:
                self.follow_trajectory.send(q, period)
            else:
                point = JointTrajectoryPoint(positions=[float(v) for v in q])
                point.time_from_start = convert.to_duration(period)
                self.pub_trajectory.publish(JointTrajectory(joint_names=list(self.arm_joints), points=[point]))
        else:
            self.pub_pose.publish(convert.pose_stamped_msg(cmd.pose, self.params["base_frame"], self.now()))
        self.last_command = cmd.pose
        self.gripper.send(bool(cmd.close_gripper))

    def status_values(self, state: str) -> dict:
        run = self.run
        values = {"state": state, "skill": self.params["skill"]}
        if run is not None:
            values.update(
                step=run.step,
                score=run.score,
                max_steps=run.max_steps,
                controller=run.controller.description,
                safety=run.last_verdict.value if run.last_verdict else "",
            )
            if run.approach:  # the planned approach's steps (not counted in `step`)
                values.update(approach_steps=run.approach_steps, approaching=run.moving is not None)
            runner = run.controller.runner
            goal = getattr(runner, "goal_pose", None)  # a policy runner's (a scripted expert has none)
            if goal is not None:  # a goal-conditioned policy's goal (base frame [m, xyzw])
                values["policy_goal"] = np.round(np.asarray(goal, float), 6).tolist()
            values.update(run.goal_facts)  # what it was built from (a tcp_goal's in-hand pose)
            late = getattr(runner, "late_chunks", None)
            if late is not None:  # asynchronous inference: chunks not ready when due (the arm held)
                values.update(
                    late_chunks=late,
                    held_ticks=runner.held_ticks,
                    lead=runner.lead_now,
                    max_lead=runner.max_lead,
                    decision_ms=round(runner.last_decision_time * 1000.0, 1),
                    inference_priority=runner.priority,
                )
        if self.threads is not None:
            values["threads"] = self.threads.threads
        values["emergency_stop"] = self.safety.stopped
        values["goal_stamp"] = self.goal_stamp
        stamp = self.world.stamp
        values["observation_age"] = "none" if stamp is None else self.now() - stamp  # [s]
        values["ground_truth"] = self.world.has_ground_truth
        return values

    def publish_status(self) -> None:
        if self.run is None:
            msg = convert.status_msg(self.get_name(), "error", self.error, self.status_values("error"))
        else:
            state = self.run.state
            level = "ok"
            if state in (State.FAILED, State.ABORTED):
                level = "error"
            elif state is State.CANCELED or self.safety.stopped or self.run.message.startswith("holding"):
                level = "warn"
            msg = convert.status_msg(self.get_name(), level, self.run.message, self.status_values(state.value))
        self.pub_status.publish(msg)

    def publish_markers(self) -> None:
        lim = self.safety.limits
        runner = self.run.controller.runner
        recorder = getattr(runner, "candidates", None)
        candidates = recorder.last if recorder is not None else None
        tracker = getattr(runner, "subgoals", None) if self.run.state is State.RUNNING else None
        subgoal = tracker.current if tracker is not None else None
        config = runner.policy.config if subgoal is not None else None
        spec = spec_of(config) if config is not None and "gravmap" in config.conditioners else None
        markers = skill_markers(
            self.run.goal, self.last_command, lim.workspace_low, lim.workspace_high,
            self.params["base_frame"], self.now(), candidates, subgoal, spec,
        )  # fmt: skip
        self.pub_markers.publish(markers)

    def publish_result(self, level: str, state: str, message: str, goal_stamp: str | None = None) -> None:
        values = self.status_values(state)
        if goal_stamp is not None:
            values["goal_stamp"] = goal_stamp
        if self.run is not None and math.isnan(self.run.score):
            values["score"] = "nan"
        self.pub_result.publish(convert.status_msg(self.get_name(), level, message, values))


def main(args=None) -> None:
    from fmb_ros.spin import exit_process, spin_nodes

    exit_process(spin_nodes(args, SkillServerNode))


if __name__ == "__main__":
    main()
