"""Task plans (YAML) and the task executor: bad files refused with the reason; the vertical chain
runs through three skill servers over DDS and every stage succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmb_core.errors import ParameterError
from fmb_ros.task_plan import parse_plan
from tests.fmb_ros.dds import ros_domain_id

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[2]
SKILLS = ["grasp", "insert", "rotate"]


def test_plan_parses_targets_and_defaults():
    plan = parse_plan(
        "name: t\nstages:\n  - {skill: grasp, target: {object: peg}, retries: 2}\n"
        "  - {skill: insert, target: [0.5, 0.0, 0.1]}\n",
        SKILLS,
    )
    assert plan.name == "t" and [s.skill for s in plan.stages] == ["grasp", "insert"]
    assert plan.stages[0].target_object == "peg" and plan.stages[0].retries == 2
    assert plan.stages[1].target_pose == (0.5, 0.0, 0.1, 0.0, 0.0, 0.0, 1.0) and plan.stages[1].retries == 0


@pytest.mark.parametrize(
    "text, match",
    [
        ("stages: []", "non-empty list `stages`"),
        ("stages:\n  - {skill: juggle, target: [0.5, 0, 0.1]}", "stage 0: unknown skill 'juggle'; known: grasp"),
        ("stages:\n  - {skill: grasp, target: [0.5, 0]}", "stage 0: target must be"),
        ("stages:\n  - {skill: grasp, target: {object: peg}, speed: 2}", r"unknown keys \['speed'\]"),
        ("stages:\n  - {skill: grasp, target: {object: peg}, retries: 99}", "retries=99 is out of range"),
        ("stages: [", "not valid YAML"),
    ],
)
def test_bad_plans_say_why(text, match):
    with pytest.raises(ParameterError, match=match):
        parse_plan(text, SKILLS)


def test_executor_refuses_a_bad_task_file_and_keeps_running(tmp_path):
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from fmb_ros.task_executor import TaskExecutorNode

    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {skill: juggle, target: {object: peg}}\n")
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id())
    node = TaskExecutorNode(context=ctx, parameter_overrides=[Parameter("task_file", value=str(bad))])
    try:
        response = node.on_start(None, Trigger.Response())
        assert not response.success and "unknown skill 'juggle'" in response.message
        assert node.state == "rejected"
        node.on_tick()  # still alive, nothing running
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


@pytest.mark.slow
def test_vertical_chain_through_the_task_executor(tmp_path):
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_srvs.srv import Trigger

    from fmb_ros import convert, qos

    domain = ros_domain_id()
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        ROS_LOG_DIR=str(tmp_path),
    )
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    log = tmp_path / "up.log"
    cmd = [sys.executable, "-m", "fmb", "ros", "up", "sim", "--task", "vertical_chain", "--skills",
           "grasp,rotate,insert", "--task-file", str(ROOT / "launch" / "tasks" / "vertical_chain.yaml"),
           "--duration", "150"]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("task_client", context=ctx)
    reports, statuses = [], []
    node.create_subscription(DiagnosticStatus, "/fmb_task_executor/report", reports.append, qos.LATCHED)
    for skill in ("grasp", "rotate", "insert"):
        node.create_subscription(DiagnosticStatus, f"/{skill}_skill/status", statuses.append, qos.STATE)
    start = node.create_client(Trigger, "/fmb_task_executor/start")
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)

    def spin_until(predicate, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
            if predicate():
                return
        raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-4000:]}")

    def skills_ready():
        seen = {}
        for msg in statuses:
            v = convert.status_values(msg)
            seen[v.get("skill")] = v.get("ground_truth") == "true" and v.get("observation_age") != "none"
        return len(seen) == 3 and all(seen.values())

    try:
        spin_until(skills_ready, 60.0, "three skill servers that see the robot")
        assert start.wait_for_service(timeout_sec=20.0)
        future = start.call_async(Trigger.Request())
        spin_until(future.done, 20.0, "the start response")
        assert future.result().success, future.result().message
        spin_until(
            lambda: reports and convert.status_values(reports[-1])["state"] in ("succeeded", "failed"),
            120.0,
            "the task's outcome",
        )
        final = reports[-1]
        assert convert.status_values(final)["state"] == "succeeded", f"{final.message}\n{log.read_text()[-4000:]}"
        assert "all 3 stages succeeded" in final.message
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode in (0, -signal.SIGINT), log.read_text()[-3000:]
