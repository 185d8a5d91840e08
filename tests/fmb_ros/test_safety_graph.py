"""The safety filter and bad input over real DDS: a skill server in its own process, and this test as
the robot (a fake driver publishing the arm's state on the wall clock, and the privileged scene state
a scripted expert reads). The expert is steered into commands the filter must stop or limit: a target
outside the workspace (clipped into the box, as the simulator does), a NaN target (held); then the
robot's state stops coming (stale), a checkpoint is missing, a task YAML names an unknown skill. Each
time, the status says why, and the nodes keep running."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseArray, PoseStamped, TwistStamped, WrenchStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from fmb_ros import convert, qos  # noqa: E402
from sim.limits import DEFAULT_WORKSPACE  # noqa: E402
from tests.fmb_ros.dds import ros_domain_id  # noqa: E402
from tests.fmb_ros.processes import start_node, stop_node  # noqa: E402

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[2]
BASE = "panda_link0"
DOWN = [1.0, 0.0, 0.0, 0.0]  # TCP pointing down (xyzw)
TCP = np.array([DEFAULT_WORKSPACE.high[0] - 0.005, 0.0, 0.30, *DOWN])  # 5 mm behind the workspace's front face


class FakeRobot:
    """Publishes the arm's state every 0.1 s of wall time, and the scene's privileged state."""

    def __init__(self, domain: int):
        from sim.env import make_env
        from sim.panda import ARM_JOINTS, FINGER_JOINTS, HOME_Q

        env = make_env("grasp", seed=1)
        _, info = env.reset(seed=1)
        env.close()
        self.episode = dict(info["episode"], object_keys=["peg"], seed=1)
        self.peg = np.array([0.6, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0])
        self.publishing = True
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain)
        n = self.node = rclpy.create_node("fake_robot", context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(n)
        self.arm, self.fingers, self.q = ARM_JOINTS, FINGER_JOINTS, HOME_Q
        self.pub_tcp = n.create_publisher(PoseStamped, "tcp_pose", qos.STATE)
        self.pub_joints = n.create_publisher(JointState, "joint_states", qos.STATE)
        self.pub_gripper = n.create_publisher(JointState, "gripper/joint_states", qos.STATE)
        self.pub_twist = n.create_publisher(TwistStamped, "tcp_twist", qos.STATE)
        self.pub_wrench = n.create_publisher(WrenchStamped, "wrench", qos.STATE)
        self.pub_objects = n.create_publisher(PoseArray, "ground_truth/object_poses", qos.STATE)
        n.create_publisher(String, "ground_truth/episode", qos.LATCHED).publish(
            String(data=convert.to_json(self.episode))
        )
        self.commands: list[PoseStamped] = []
        self.statuses: list[DiagnosticStatus] = []
        self.results: list[DiagnosticStatus] = []
        n.create_subscription(PoseStamped, "equilibrium_pose", self.commands.append, qos.COMMAND)
        n.create_subscription(DiagnosticStatus, "/skill/status", self.statuses.append, qos.STATE)
        n.create_subscription(DiagnosticStatus, "/skill/result", self.results.append, qos.LATCHED)
        self.goal = n.create_publisher(PoseStamped, "/skill/goal", qos.COMMAND)
        self.cancel = n.create_client(Trigger, "/skill/cancel")
        n.create_timer(0.1, self.publish)

    def publish(self) -> None:
        t = time.time()
        if self.publishing:
            self.pub_tcp.publish(convert.pose_stamped_msg(TCP, BASE, t))
            self.pub_joints.publish(convert.joint_state_msg(self.arm, self.q, np.zeros(7), seconds=t))
            self.pub_gripper.publish(convert.joint_state_msg(self.fingers, [0.04, 0.04], seconds=t))
            self.pub_twist.publish(convert.twist_msg(np.zeros(6), BASE, t))
            self.pub_wrench.publish(convert.wrench_msg(np.zeros(6), "panda_hand_tcp", t))
        self.pub_objects.publish(convert.pose_array_msg([self.peg], BASE, t))

    def spin_until(self, predicate, timeout: float, what: str):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
            if predicate():
                return
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def status(self) -> dict:
        return convert.status_values(self.statuses[-1]) if self.statuses else {}

    def start(self, goal=(0.6, 0.0, 0.05, *DOWN)) -> None:
        before = len(self.results)
        self.goal.publish(convert.pose_stamped_msg(goal, BASE, time.time()))
        self.spin_until(lambda: self.status().get("state") == "running", 10.0, "the skill to start")
        assert len(self.results) == before, convert.status_values(self.results[-1])

    def stop(self) -> None:
        assert self.cancel.wait_for_service(timeout_sec=10.0)
        future = self.cancel.call_async(Trigger.Request())
        self.spin_until(future.done, 10.0, "cancel")
        assert future.result().success, future.result().message

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _env(domain: int, logs: Path) -> dict:
    return dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        ROS_LOG_DIR=str(logs),
    )


def _held(robot: FakeRobot) -> np.ndarray:
    """The newest command, which must be the measured pose (the hold)."""
    pose, frame, _ = convert.pose_stamped_array(robot.commands[-1])
    assert frame == BASE
    return pose


@pytest.mark.slow
def test_filter_stops_bad_commands_and_stale_state_over_dds(tmp_path):
    domain = ros_domain_id()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    skill = start_node(
        "fmb_ros.skill_server", "-r", "__node:=skill", "-p", "skill:=grasp", "-p", "judge:=false",
        "-p", "max_steps:=1000", "-p", "observation_timeout:=0.5",
        env=_env(domain, tmp_path), log=tmp_path / "skill.log",
    )  # fmt: skip
    robot = FakeRobot(domain)
    try:
        robot.spin_until(lambda: robot.status().get("ground_truth") == "true", 60.0, "the skill to see the robot")
        # 1. The expert heads for a peg beyond the workspace's front face: its target leaves the box and
        #    is clipped into it (sim.limits, the simulator's rule), never beyond the front face.
        robot.peg = np.array([1.2, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0])
        robot.spin_for(0.5)  # the skill mirrors the new pose
        robot.start()
        robot.spin_until(lambda: "clipped into the workspace" in robot.statuses[-1].message, 10.0, "the filter to clip")
        assert robot.status()["safety"] == "limited"
        assert _held(robot)[0] == pytest.approx(DEFAULT_WORKSPACE.high[0])  # on the front face, not beyond
        robot.stop()
        # 2. A NaN in the scene makes the expert's target NaN: rejected, held.
        robot.peg = np.array([np.nan, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0])
        robot.spin_for(0.5)
        robot.start()
        robot.spin_until(lambda: "NaN" in robot.statuses[-1].message, 10.0, "a NaN rejection")
        assert robot.status()["safety"] == "rejected"
        assert np.all(np.isfinite(_held(robot))) and np.allclose(_held(robot)[:3], TCP[:3], atol=1e-6)
        robot.stop()
        # 3. The robot's state stops: the watchdog holds the arm until it comes back.
        robot.peg = np.array([0.6, 0.0, 0.02, 0.0, 0.0, 0.0, 1.0])
        robot.start()
        robot.spin_until(lambda: robot.status().get("safety") in ("passed", "limited"), 10.0, "normal running")
        robot.publishing = False
        robot.spin_until(lambda: robot.status().get("safety") == "stale", 5.0, "the watchdog")
        assert "old (observation_timeout 0.5 s)" in robot.statuses[-1].message
        step = int(robot.status()["step"])
        robot.spin_for(0.5)
        assert int(robot.status()["step"]) == step  # held: the skill does not advance
        robot.publishing = True
        robot.spin_until(lambda: robot.status().get("safety") in ("passed", "limited"), 5.0, "recovery")
        robot.stop()
        assert skill.poll() is None, "the skill server exited"
    finally:
        robot.close()
        code = stop_node(skill)
    assert code in (0, -signal.SIGINT), (tmp_path / "skill.log").read_text()[-3000:]


@pytest.mark.slow
def test_missing_checkpoint_and_unknown_skill_are_refused_over_dds(tmp_path):
    """A skill server whose checkpoint is missing and an executor given a task with an unknown skill:
    both refuse with the reason, over DDS, and keep running (the arm is never commanded)."""
    domain = ros_domain_id()
    env = _env(domain, tmp_path)
    task = tmp_path / "task.yaml"
    task.write_text("name: juggling\nstages:\n  - skill: juggle\n    target: [0.5, 0.0, 0.1]\n")
    skill = start_node(
        "fmb_ros.skill_server", "-r", "__node:=skill", "-p", "checkpoint:=/nonexistent/run",
        env=env, log=tmp_path / "skill.log",
    )  # fmt: skip
    executor_proc = start_node("fmb_ros.task_executor", "-p", f"task_file:={task}", env=env, log=tmp_path / "exec.log")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    robot = FakeRobot(domain)
    reports: list[DiagnosticStatus] = []
    robot.node.create_subscription(DiagnosticStatus, "/fmb_task_executor/report", reports.append, qos.LATCHED)
    start = robot.node.create_client(Trigger, "/fmb_task_executor/start")
    try:
        robot.spin_until(lambda: robot.statuses, 60.0, "the skill's status")
        assert robot.statuses[-1].level == DiagnosticStatus.ERROR
        assert "no such checkpoint" in robot.statuses[-1].message and "/nonexistent/run" in robot.statuses[-1].message
        robot.goal.publish(convert.pose_stamped_msg([0.5, 0.0, 0.1, *DOWN], BASE, time.time()))
        robot.spin_until(lambda: robot.results, 10.0, "the skill's answer to a goal")
        values = convert.status_values(robot.results[-1])
        assert values["state"] == "rejected" and "no such checkpoint" in robot.results[-1].message
        assert start.wait_for_service(timeout_sec=30.0)
        future = start.call_async(Trigger.Request())
        robot.spin_until(future.done, 10.0, "the executor's answer")
        response = future.result()
        assert not response.success and "unknown skill 'juggle'" in response.message, response.message
        robot.spin_until(lambda: reports, 5.0, "the executor's report")
        assert convert.status_values(reports[-1])["state"] == "rejected"
        n = len(robot.statuses)
        robot.spin_for(1.0)
        assert len(robot.statuses) > n and skill.poll() is None and executor_proc.poll() is None  # still running
        assert robot.commands == []  # the arm was never commanded
    finally:
        robot.close()
        codes = stop_node(skill), stop_node(executor_proc)
    assert all(c in (0, -signal.SIGINT) for c in codes), (tmp_path / "exec.log").read_text()[-3000:]
