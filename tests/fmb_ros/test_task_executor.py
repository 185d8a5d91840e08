"""Task plans (YAML) and the task executor: bad files refused with the reason; the vertical chain
runs through three skill servers over DDS, with experts (every stage succeeds) and with learned
skills (the executor's report agrees with the simulator's judgement); the horizontal chain through
four, the executor retreating the open hand before regrasp."""

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
        ("stages:\n  - {skill: grasp, target: [0.5, 0]}", r"stage 0 \(grasp\): target must be"),
        (
            "stages:\n  - {skill: grasp, target: {object: peg}}\n  - {skill: insert, target: {object: bin}}",
            r"stage 1 \(insert\): unknown target object 'bin'; known: board, peg, hole, fixture, pocket",
        ),
        (
            "stages:\n  - {skill: grasp, target: {object: peg}, retreat: yes please}",
            r"stage 0 \(grasp\): retreat must be",
        ),
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


def test_a_goal_waits_for_its_skill_server_to_subscribe_and_the_stage_fails_saying_so(tmp_path):
    """A goal published before the skill server's subscription is matched would be lost (reliable,
    volatile): the executor sends it once one subscribes, and a server that never comes fails the
    stage at its timeout with that reason."""
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from geometry_msgs.msg import PoseStamped
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from fmb_ros import qos
    from fmb_ros.task_executor import TaskExecutorNode

    plan = tmp_path / "plan.yaml"
    plan.write_text("stages:\n  - {skill: grasp, target: [0.5, 0.0, 0.1, 0, 0, 0, 1], timeout: 1.0}\n")
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id())
    node = TaskExecutorNode(context=ctx, parameter_overrides=[Parameter("task_file", value=str(plan))])
    server = rclpy.create_node("grasp_goal_listener", context=ctx)
    try:
        assert node.on_start(None, Trigger.Response()).success
        assert not node.goal_sent and "no grasp skill server subscribes to" in node.waiting
        time.sleep(1.1)  # past the stage's timeout, nobody listening
        node.on_tick()
        assert node.state == "failed" and not node.goal_sent
        assert node.on_start(None, Trigger.Response()).success  # again, with a server this time
        goals = []
        server.create_subscription(PoseStamped, node.goals["grasp"].topic_name, goals.append, qos.COMMAND)
        executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
        executor.add_node(server)
        end = time.monotonic() + 10.0
        while not goals and time.monotonic() < end:
            node.on_tick()
            executor.spin_once(timeout_sec=0.05)
        assert node.goal_sent and len(goals) == 1
    finally:
        server.destroy_node()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_retreat_defaults_to_the_chains_and_is_planned_within_the_robots_limits():
    import numpy as np

    from fmb_ros.retreat import RetreatMove
    from sim.experts.chain import RETREAT, RETREAT_SPEED, RETREAT_STEPS, retreat_path
    from sim.limits import DEFAULT_ACTION_LIMITS
    from sim.spatial import rotation_error

    text = "stages:\n  - {skill: grasp, target: {object: peg}}\n  - {skill: regrasp, target: [0.4, 0.3, 0.1]}\n"
    plan = parse_plan(text + "  - {skill: regrasp, target: {object: peg}, retreat: false}", ["grasp", "regrasp"])
    assert [s.retreat for s in plan.stages] == [False, True, False]
    tcp = np.array([0.42, 0.30, 0.12, 1.0, 0.0, 0.0, 0.0])  # pointing down, beside a peg in the pocket
    move = RetreatMove.plan(tcp)
    path = np.vstack([tcp, move.poses])
    assert np.all(np.linalg.norm(np.diff(path[:, :3], axis=0), axis=1) <= RETREAT_SPEED + 1e-9)
    turns = [np.abs(rotation_error(a[3:], b[3:])).max() for a, b in zip(path[:-1], path[1:])]
    assert max(turns) <= DEFAULT_ACTION_LIMITS.max_step_rotation + 1e-9
    for waypoint in retreat_path(tcp):  # the chain's path, each waypoint on it
        assert np.min(np.linalg.norm(move.poses[:, :3] - waypoint[:3], axis=1)) < 1e-9
    assert move.end[:3].tolist() == RETREAT.tolist()
    sent = [move.next(tcp) for _ in range(len(move.poses) + RETREAT_STEPS + 1)]  # the hand never moves
    assert sent[-1] is None and not move.reached and sent[-2] is not None
    move = RetreatMove(move.poses[-1:])
    assert move.next(tcp) is not None and move.next(move.end) is None and move.reached


def test_executor_takes_the_pocket_from_the_fixtures_ground_truth_and_waits_for_a_clear_view():
    """Ground truth: `pocket` is the fixture's pose composed with its pocket frame. After a retreat a
    perceived target must come from a cloud taken once it is over."""
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    import numpy as np
    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from fmb_ros import convert
    from fmb_ros.task_executor import TaskExecutorNode
    from sim.tasks.fixture_layout import pocket_frame

    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id())
    overrides = [Parameter("perception_namespace", value="/fmb_perception")]
    node = TaskExecutorNode(context=ctx, parameter_overrides=overrides)
    try:
        fixture = [0.42, 0.3, 0.0, 0.0, 0.0, 0.0872, 0.9962]
        node.on_episode(String(data='{"object_keys": ["board", "peg", "fixture"]}'))
        node.on_object_poses(convert.pose_array_msg([[0.5, -0.2, 0, 0, 0, 0, 1], [0.5, 0.1, 0.1, 0, 0, 0, 1], fixture],
                                                    "b", 0))  # fmt: skip
        assert np.allclose(node.objects["pocket"], pocket_frame(np.array(fixture)))
        node._on_perceived("peg")(convert.pose_stamped_msg([0.42, 0.3, 0.1, 0, 0, 0, 1], "panda_link0", 4.0))
        node.cleared_at = 5.0  # a retreat ended at 5 s
        assert node._target_pose("peg") is None and "after the retreat" in node.waiting
        assert node._target_pose("fixture") is None  # ground truth alone does not do with perception on
        node._on_perceived("peg")(convert.pose_stamped_msg([0.43, 0.3, 0.1, 0, 0, 0, 1], "panda_link0", 5.5))
        assert node._target_pose("peg")[0] == pytest.approx(0.43)
        topics = {s.topic_name for s in node.subscriptions}
        assert {"/fmb_perception/fixture_pose", "/fmb_perception/pocket", "/tcp_pose"} <= topics
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


@pytest.mark.slow
def run_chain(tmp_path, *extra: str, task: str = "vertical_chain", timeout: float = 120.0):
    """`fmb ros up sim --task <task>` with the task executor on launch/tasks/<task>.yaml, started
    over DDS; returns the executor's final report, the simulator's judgements until just after it
    (status values, in order) and the log."""
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_srvs.srv import Trigger

    from fmb_ros import convert, qos
    from sim.tasks import TASKS

    skills = TASKS[task].stages
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
    cmd = [sys.executable, "-m", "fmb", "ros", "up", "sim", "--task", task,
           "--task-file", str(ROOT / "launch" / "tasks" / f"{task}.yaml"),
           "--duration", str(timeout + 30), *extra]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("task_client", context=ctx)
    reports, statuses, judgements = [], [], []
    node.create_subscription(DiagnosticStatus, "/fmb_task_executor/report", reports.append, qos.LATCHED)
    node.create_subscription(DiagnosticStatus, "/ground_truth/evaluation", judgements.append, qos.STATE)
    for skill in skills:
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
        return len(seen) == len(skills) and all(seen.values())

    try:
        spin_until(skills_ready, 60.0, f"{len(skills)} skill servers that see the robot")
        assert start.wait_for_service(timeout_sec=20.0)
        future = start.call_async(Trigger.Request())
        spin_until(future.done, 20.0, "the start response")
        assert future.result().success, future.result().message
        spin_until(
            lambda: reports and convert.status_values(reports[-1])["state"] in ("succeeded", "failed"),
            timeout,
            "the task's outcome",
        )
        done = len(judgements)
        spin_until(lambda: len(judgements) > done, 10.0, "the simulator's judgement after the outcome")
        final, judged = reports[-1], [convert.status_values(j) for j in judgements]
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
    return final, judged, log.read_text()


def test_vertical_chain_through_the_task_executor(tmp_path):
    """Scripted experts behind the three skill servers (the default of `fmb ros up sim`): every
    stage succeeds and the simulator agrees."""
    from fmb_ros import convert

    # At half real time: at 1x on this 2-core machine the scripted insertion jammed in the hole's
    # mouth (progress 0.948 of seed 0, both attempts) on some days and not on others (the whole
    # graph shares one process; the sim step takes 23-93 ms of the 100 ms period).
    final, judged, log = run_chain(tmp_path, "--real-time-factor", "0.5")
    assert convert.status_values(final)["state"] == "succeeded", f"{final.message}\n{log[-4000:]}\n{judged[-1:]}"
    assert "all 3 stages succeeded" in final.message
    assert any(j["success"] == "true" and j["stage_name"] == "insert" for j in judged), judged[-1]


@pytest.mark.train
def test_vertical_chain_with_learned_skills_through_the_task_executor(tmp_path):
    """Tiny policies trained on chained demonstrations run rotate and insert behind their skill
    servers (`--policy rotate=RUN --policy insert=RUN`), the expert grasps: the executor's report
    names the stage the simulator's chain stopped in, and succeeds only when the simulator says so."""
    pytest.importorskip("torch", reason="policies need the 'learn' extra (torch)")
    from fmb_ros import convert
    from policies.train import train
    from sim.collect import RunSpec, collect
    from sim.stages import split_stages
    from tests.policies.conftest import tiny, tiny_training

    collect(RunSpec("vertical_chain", families=("rectangle",)), tmp_path / "chain", episodes=2, progress=False)
    split_stages(tmp_path / "chain", tmp_path / "stages", progress=False)
    for skill in ("rotate", "insert"):
        config = tiny(goal="tcp_goal", state_keys=("tcp_pose", "gripper", "goal"))
        train([tmp_path / "stages" / skill], tmp_path / skill, config, tiny_training(steps=4), progress=False,
              log=lambda m: None)  # fmt: skip
    final, judged, log = run_chain(
        tmp_path, "--policy", f"rotate={tmp_path / 'rotate'}", "--policy", f"insert={tmp_path / 'insert'}"
    )
    assert "rotate (" in log and "insert (" in log  # the summary line names the policies
    report = convert.status_values(final)
    succeeded = any(j["success"] == "true" for j in judged)  # the chain's last check held at some point
    assert (report["state"] == "succeeded") == succeeded, (final.message, judged[-1])
    if not succeeded:  # the executor names the stage the simulator's chain stopped in
        assert report["stage_name"] == judged[-1]["stage_name"], (final.message, judged[-1])


@pytest.mark.slow
def test_horizontal_chain_through_the_task_executor(tmp_path):
    """Scripted experts behind the four skill servers: the executor retreats the open hand before
    regrasp (logged), every stage succeeds, and the simulator's chain succeeds too."""
    from fmb_ros import convert

    # Half real time: four skill servers, the simulator and the executor share a 2-core machine,
    # and a skill whose observations lag behind misses its step limit (seen under load).
    final, judged, log = run_chain(tmp_path, "--real-time-factor", "0.5", task="horizontal_chain", timeout=200.0)
    assert convert.status_values(final)["state"] == "succeeded", f"{final.message}\n{log[-4000:]}"
    assert "all 4 stages succeeded" in final.message
    assert "stage 2 (regrasp): retreat over" in log
    stages = [j["stage_name"] for j in judged]
    assert stages.index("regrasp") < stages.index("insert")  # the simulator's chain went stage by stage
    assert any(j["success"] == "true" and j["stage_name"] == "insert" for j in judged), judged[-1]
