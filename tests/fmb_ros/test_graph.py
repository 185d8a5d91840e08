"""End to end over real DDS on loopback: the simulated robot and a skill server run as separate
processes; this test is a third node that sends goals and checks what the skill and the simulator say.

Each module run uses its own ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseArray, PoseStamped  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from fmb_ros import convert, qos  # noqa: E402
from tests.fmb_ros.dds import ros_domain_id  # noqa: E402
from tests.fmb_ros.processes import start_node, stop_node  # noqa: E402

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[2]
BASE = "panda_link0"
SKILL = "/grasp_skill"


class Client:
    """A node in the test: records statuses, results, evaluations and object poses."""

    def __init__(self, domain_id: int, logs: Path):
        self.logs = logs
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("test_client", context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.results: list = []
        self.statuses: list = []
        self.evaluations: list = []
        self.objects: list = []
        self.markers: list = []
        n = self.node
        n.create_subscription(MarkerArray, f"{SKILL}/markers", self.markers.append, qos.STATE)
        n.create_subscription(DiagnosticStatus, f"{SKILL}/result", self.results.append, qos.LATCHED)
        n.create_subscription(DiagnosticStatus, f"{SKILL}/status", self.statuses.append, qos.STATE)
        n.create_subscription(DiagnosticStatus, "/ground_truth/evaluation", self.evaluations.append, qos.STATE)
        n.create_subscription(PoseArray, "/ground_truth/object_poses", self.objects.append, qos.STATE)
        self.goal = n.create_publisher(PoseStamped, f"{SKILL}/goal", qos.COMMAND)
        self.cancel = n.create_client(Trigger, f"{SKILL}/cancel")
        self.estop = n.create_client(SetBool, f"{SKILL}/emergency_stop")
        self.reset = n.create_client(Trigger, "/sim/reset")

    def spin_until(self, predicate, timeout: float, what: str):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)
            if predicate():
                return
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")

    def call(self, client, request, timeout: float = 15.0):
        assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
        future = client.call_async(request)
        self.spin_until(future.done, timeout, f"a response from {client.srv_name}")
        return future.result()

    def send_goal(self, pose, frame=BASE) -> int:
        """Publish a goal; returns how many results had arrived before it."""
        before = len(self.results)
        self.goal.publish(convert.pose_stamped_msg(pose, frame, 0.0))
        return before

    def result_after(self, before: int, timeout: float):
        self.spin_until(lambda: len(self.results) > before, timeout, "a skill result")
        msg = self.results[before]
        return msg, convert.status_values(msg)

    def node_logs(self) -> str:
        """The nodes' output so far, for assertion messages."""
        files = (self.logs / "sim.log", self.logs / "skill.log")
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in files)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    logs = tmp_path_factory.mktemp("ros_logs")
    domain = ros_domain_id()
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"),
        ROS_LOG_DIR=str(logs),
    )
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # for the client node in this process
    sim = start_node(
        "fmb_ros.sim_robot", "-p", "task:=grasp", "-p", "seed:=0", "-p", "real_time_factor:=1.0",
        env=env, log=logs / "sim.log",
    )  # fmt: skip
    skill = start_node(
        "fmb_ros.skill_server", "-r", "__node:=grasp_skill", "-p", "skill:=grasp", "-p", "use_sim_time:=true",
        env=env, log=logs / "skill.log",
    )  # fmt: skip
    client = Client(domain, logs)
    try:
        # Up when the skill reports (it ticks on /clock) that it sees the robot and the ground truth.
        client.spin_until(lambda: client.objects and _skill_sees_robot(client), 60.0, "the sim and skill nodes")
        yield client
    except BaseException:
        print(client.node_logs())
        raise
    finally:
        client.close()
        stop_node(skill)
        stop_node(sim)
        for proc, name in ((sim, "sim.log"), (skill, "skill.log")):
            assert proc.returncode in (0, -signal.SIGINT), (logs / name).read_text()[-3000:]


def _skill_sees_robot(client) -> bool:
    if not client.statuses:
        return False
    values = convert.status_values(client.statuses[-1])
    return values.get("observation_age", "none") != "none" and values.get("ground_truth") == "true"


def _goal_towards_peg(client) -> np.ndarray:
    peg = convert.pose_array_arrays(client.objects[-1])[0]
    return np.concatenate([peg[:3], [0.0, 0.0, 0.0, 1.0]])


@pytest.mark.slow
def test_goal_in_unknown_frame_is_rejected_and_the_node_lives_on(graph):
    before = graph.send_goal(_goal_towards_peg(graph), frame="map")
    msg, values = graph.result_after(before, 20.0)
    assert values["state"] == "rejected" and msg.level == DiagnosticStatus.ERROR
    assert "frame 'map' is unknown" in msg.message
    before = graph.send_goal([2.0, 0.0, 0.1, 0, 0, 0, 1])
    msg, values = graph.result_after(before, 20.0)
    assert values["state"] == "rejected" and "outside the workspace" in msg.message


def test_grasp_goal_succeeds_and_the_simulator_agrees(graph):
    assert graph.call(graph.reset, Trigger.Request()).success
    graph.spin_until(lambda: graph.objects, 10.0, "object poses")
    start_z = convert.pose_array_arrays(graph.objects[-1])[0][2]
    before = graph.send_goal(_goal_towards_peg(graph))
    msg, values = graph.result_after(before, 90.0)
    assert values["state"] == "succeeded", f"{msg.message}\n{graph.node_logs()}"
    assert msg.level == DiagnosticStatus.OK and float(values["score"]) == pytest.approx(1.0)
    assert 0 < int(values["step"]) <= 70
    # The simulator's own judgement, read by this node: success, and the peg is off the table.
    n = len(graph.evaluations)
    graph.spin_until(lambda: len(graph.evaluations) > n + 2, 10.0, "fresh evaluations")
    sim = convert.status_values(graph.evaluations[-1])
    assert sim["success"] == "true", f"{sim}\n{graph.node_logs()}"
    assert convert.pose_array_arrays(graph.objects[-1])[0][2] > start_z + 0.04, graph.node_logs()
    # RViz sees the goal, the last command and the workspace box.
    assert {"goal", "command", "workspace"} <= {m.ns for m in graph.markers[-1].markers}


def test_cancel_and_emergencystop_node(graph):
    assert graph.call(graph.reset, Trigger.Request()).success
    assert graph.call(graph.estop, SetBool.Request(data=True)).success
    before = graph.send_goal(_goal_towards_peg(graph))
    graph.spin_until(
        lambda: graph.statuses and convert.status_values(graph.statuses[-1]).get("safety") == "stopped",
        20.0,
        "the skill to hold on the emergency stop",
    )
    held = convert.status_values(graph.statuses[-1])
    assert held["state"] == "running" and held["step"] == "0" and held["emergency_stop"] == "true"
    assert graph.call(graph.estop, SetBool.Request(data=False)).success
    graph.spin_until(
        lambda: int(convert.status_values(graph.statuses[-1]).get("step", 0)) >= 3, 20.0, "the skill to resume"
    )
    response = graph.call(graph.cancel, Trigger.Request())
    assert response.success, response.message
    msg, values = graph.result_after(before, 10.0)
    assert values["state"] == "canceled" and msg.level == DiagnosticStatus.WARN
    assert not graph.call(graph.cancel, Trigger.Request()).success  # nothing left to cancel


@pytest.mark.slow
def test_fmb_ros_up_sim_runs_a_goal_in_one_process(tmp_path):
    """`fmb ros up sim` (simulator + skill server on one MultiThreadedExecutor, with the launch
    parameter file that sets use_sim_time for every node) serves a goal from another process."""
    domain = ros_domain_id()
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        ROS_LOG_DIR=str(tmp_path),
    )
    log = tmp_path / "sim.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fmb", "ros", "up", "sim", "--seed", "4", "--duration", "120"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    (tmp_path / "skill.log").write_text("(same process as sim.log)")
    client = Client(domain, tmp_path)
    try:
        client.spin_until(lambda: client.objects and _skill_sees_robot(client), 60.0, "fmb ros up sim")
        msg, values = client.result_after(client.send_goal(_goal_towards_peg(client)), 60.0)
        assert values["state"] == "succeeded", f"{msg.message}\n{client.node_logs()}"
    finally:
        client.close()
        stop_node(proc)
    assert proc.returncode in (0, -signal.SIGINT), log.read_text()[-3000:]
    assert "exception was never retrieved" not in log.read_text()


@pytest.mark.slow
def test_grasp_through_the_joint_trajectory_interface(tmp_path):
    """The skill commands the arm with trajectory_msgs/JointTrajectory (inverse kinematics of each
    safe target with mink, the maintained IK library), as a ros2_control JointTrajectoryController
    would take it; the grasp succeeds. (The own DLS solver: tests/fmb_ros/test_kinematics.py.)"""
    pytest.importorskip("mink", reason="ik_solver mink needs the [ik] extra")
    params = tmp_path / "joint.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    use_sim_time: true\n"
        "grasp_skill:\n  ros__parameters:\n    command_interface: joint_trajectory\n    ik_solver: mink\n"
    )
    domain = ros_domain_id()
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        ROS_LOG_DIR=str(tmp_path),
    )
    log = tmp_path / "sim.log"
    cmd = [sys.executable, "-m", "fmb", "ros", "up", "sim", "--seed", "2", "--params-file", str(params),
           "--duration", "120"]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    (tmp_path / "skill.log").write_text("(same process as sim.log)")
    client = Client(domain, tmp_path)
    try:
        client.spin_until(lambda: client.objects and _skill_sees_robot(client), 60.0, "fmb ros up sim")
        msg, values = client.result_after(client.send_goal(_goal_towards_peg(client)), 60.0)
        assert values["state"] == "succeeded", f"{msg.message}\n{client.node_logs()}"
    finally:
        client.close()
        stop_node(proc)
    assert proc.returncode in (0, -signal.SIGINT), log.read_text()[-3000:]
