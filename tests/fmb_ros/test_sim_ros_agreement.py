"""`fmb eval --goals perceived` and the ROS graph run the same pipeline: one seeded insertion, once
through the simulated robot loop (`policies.runtime.perceived.RobotLoopRunner`) and once over real DDS on
loopback (the simulated robot, `fmb_perception` and the skill server, each in its own process, the
skill started on perception's target hole, reading perception's held peg). Both build the policy's
goal from perception by the same rule (the held peg's in-hand pose chosen by `--in-hand checked`) and
pass the policy's first action through the same filter and limits, so their goals agree within
perception's tolerance and their first commands agree."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
pytest.importorskip("open3d", reason="perception needs open3d: pip install -e .[perception]")
pytest.importorskip("torch", reason="policies need the 'learn' extra (torch)")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from fmb_ros import convert, qos  # noqa: E402
from sim.perception import pose_error  # noqa: E402
from tests.fmb_ros.dds import ros_domain_id  # noqa: E402
from tests.fmb_ros.processes import start_node, stop_node  # noqa: E402

pytestmark = [pytest.mark.graph, pytest.mark.train]

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "launch" / "params" / "perception.yaml"
SEED = 4  # an insertion scene whose board perception finds on both paths
SKILL = "/insert_skill"


@pytest.fixture(scope="module")
def goal_policy(tmp_path_factory):
    """A small deterministic BC policy conditioned on `tcp_goal`, trained enough to respond to it."""
    from policies.train import train
    from sim.collect import RunSpec, collect
    from tests.policies.conftest import tiny, tiny_training

    root = tmp_path_factory.mktemp("agreement")
    collect(RunSpec("insert", families=("rectangle",)), root / "demos", episodes=3, progress=False)
    config = tiny(policy_type="bc", goal="tcp_goal")
    train([root / "demos"], root / "run", config, tiny_training(steps=150), progress=False, log=lambda m: None)
    return root / "run"


class _Recorder:
    """The robot-loop runner of `fmb eval --goals perceived`, recording each safe command."""

    def __init__(self, runner):
        self.runner = runner
        self.commands: list[tuple[np.ndarray, np.ndarray, bool]] = []  # (measured, command, close)

    def reset(self, env):
        self.runner.reset(env)

    def act(self, env):
        return self.runner.act(env)

    def command(self, env, action):
        measured = env.tcp_pose()
        pose, close = self.runner.command(env, action)
        self.commands.append((measured, np.asarray(pose, float), bool(close)))
        return pose, close


def _simulated(run: Path) -> tuple[np.ndarray, list, dict, str]:
    """(the policy's goal, the commands, the episode facts, the in-hand source) of `fmb eval --goals
    perceived`'s loop."""
    from policies.experiments.evaluate import PolicyRunSpec
    from sim.rollout import run_episode

    spec = PolicyRunSpec(str(run), "insert", goals="perceived", sensor="exact", device="cpu", max_steps=3)
    env, runner = spec.build()
    recorder = _Recorder(runner)
    runner.rng = np.random.default_rng(SEED)
    run_episode(env, recorder, SEED)
    info = env.episode.info
    env.close()
    assert runner.report["perception_failure"] == "", runner.report
    return np.asarray(runner.runner.goal_pose, float), recorder.commands, info, runner.report["in_hand_source"]


@pytest.mark.slow
def test_sim_and_ros_build_the_same_goal_and_command(goal_policy, tmp_path):
    goal_sim, commands_sim, info_sim, in_hand_sim = _simulated(goal_policy)

    domain = ros_domain_id()
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"),
        ROS_LOG_DIR=str(tmp_path),
    )
    sim = start_node(
        "fmb_ros.sim_robot", "--params-file", str(PARAMS), "-p", "task:=insert", "-p", f"seed:={SEED}",
        "-p", "real_time_factor:=0.5", "-p", "sensor:=exact", env=env, log=tmp_path / "sim.log",
    )  # fmt: skip
    perception = start_node(
        "fmb_ros.perception_node", "--params-file", str(PARAMS), "-p", "rate:=1.0",
        env=env, log=tmp_path / "perception.log",
    )  # fmt: skip
    skill = start_node(
        "fmb_ros.skill_server", "-r", f"__node:={SKILL[1:]}", "-p", "skill:=insert",
        "-p", f"checkpoint:={goal_policy}", "-p", "device:=cpu", "-p", "inference:=sync",
        "-p", "policy_goal:=goal", "-p", "target_topic:=/fmb_perception/target_hole", "-p", "max_steps:=3",
        "-p", "held_peg_topic:=/fmb_perception/held_peg",
        "-p", "use_sim_time:=true", env=env, log=tmp_path / "skill.log",
    )  # fmt: skip
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("agreement_client", context=ctx)
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    got: dict[str, list] = {k: [] for k in ("hole", "held", "status", "episode", "tcp", "command", "perception")}
    for key, topic, msg_type, profile in (
        ("hole", "/fmb_perception/target_hole", PoseStamped, qos.STATE),
        ("held", "/fmb_perception/held_peg", PoseStamped, qos.STATE),
        ("status", f"{SKILL}/status", DiagnosticStatus, qos.STATE),
        ("episode", "/ground_truth/episode", String, qos.LATCHED),
        ("tcp", "/tcp_pose", PoseStamped, qos.STATE),
        ("perception", "/fmb_perception/status", DiagnosticStatus, qos.STATE),
    ):
        node.create_subscription(msg_type, topic, got[key].append, profile)
    # each command with the newest measured pose that had arrived before it (what the skill acted on)
    on_command = lambda msg: got["command"].append((msg, got["tcp"][-1] if got["tcp"] else None))  # noqa: E731
    node.create_subscription(PoseStamped, "/equilibrium_pose", on_command, qos.COMMAND)
    start = node.create_client(Trigger, f"{SKILL}/start")
    names = ("sim.log", "perception.log", "skill.log")

    def logs() -> str:
        return "\n".join(f"--- {n}\n{(tmp_path / n).read_text()[-2500:]}" for n in names)

    def spin_until(predicate, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
            assert all(p.poll() is None for p in (sim, perception, skill)), logs()
            if predicate():
                return
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{logs()}")

    def ready() -> bool:
        values = convert.status_values(got["status"][-1]) if got["status"] else {}
        perceived = got["hole"] and got["held"] and got["episode"]
        return bool(perceived) and values.get("observation_age", "none") != "none"

    try:
        spin_until(ready, 120.0, "the robot, perception's target hole and held peg, and the skill")

        def held_tips() -> list[str]:
            """How perception placed the held peg's tip, per estimate (free space: with the depth views)."""
            return [v["held_tip"] for m in got["perception"] if "held_tip" in (v := convert.status_values(m))]

        spin_until(held_tips, 30.0, "perception's status of its held peg")
        assert held_tips()[0] == "free space", held_tips()
        info = convert.from_json(got["episode"][-1].data)
        assert (info["peg"], info["hole"]) == (info_sim["peg"], info_sim["hole"])  # the same scene
        assert start.wait_for_service(timeout_sec=15.0)
        before = len(got["command"])
        end = time.monotonic() + 30.0
        while True:  # the skill's own subscription may not have had perception's target yet
            future = start.call_async(Trigger.Request())
            spin_until(future.done, 30.0, "the start service")
            answer = future.result()
            if answer.success or not answer.message.startswith("no target") or time.monotonic() > end:
                break
            spin_until(lambda pause=time.monotonic() + 0.5: time.monotonic() > pause, 5.0, "half a second")
        assert answer.success, answer.message
        spin_until(lambda: len(got["command"]) > before, 30.0, "the skill's first command")
        first, measured = got["command"][before]
        command_ros, frame, _ = convert.pose_stamped_array(first)
        assert frame == "panda_link0" and measured is not None
        measured_ros = convert.pose_stamped_array(measured)[0]
        spin_until(lambda: "policy_goal" in convert.status_values(got["status"][-1]), 10.0, "the policy goal")
        values = convert.status_values(got["status"][-1])
        goal_ros = np.asarray(json.loads(values["policy_goal"]), float)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        for proc in (skill, perception, sim):
            stop_node(proc)
    for proc, name in zip((sim, perception, skill), names):
        assert proc.returncode in (0, -signal.SIGINT), (tmp_path / name).read_text()[-3000:]

    # The in-hand pose from the same source (the estimate was there when the goal came), the same
    # goal within perception's tolerance (two estimates on two clouds of one scene), and both near
    # the simulator's own target.
    assert values["in_hand_source"] == in_hand_sim and values["in_hand_estimate"].endswith(" s old"), values
    t, r = pose_error(goal_ros, goal_sim)
    assert t < 0.003 and r < np.radians(2.0), (t, np.degrees(r))
    truth = np.asarray(info["targets"]["tcp_goal"], float)
    for goal in (goal_ros, goal_sim):
        t, r = pose_error(goal, truth)
        assert t < 0.005 and r < np.radians(3.0), (t, np.degrees(r))
    # The same first command about the measured pose: one policy on one state, one filter.
    measured_sim, command_sim, _ = commands_sim[0]
    step_sim = command_sim[:3] - measured_sim[:3]
    step_ros = command_ros[:3] - measured_ros[:3]
    assert np.linalg.norm(measured_ros[:3] - measured_sim[:3]) < 0.002  # the arm at its start on both
    assert np.linalg.norm(step_ros - step_sim) < 0.002, (step_ros, step_sim)
    assert pose_error(command_ros, command_sim)[1] < np.radians(1.0)


@pytest.mark.slow
def test_skill_server_builds_the_tcp_goal_with_the_in_hand_pose_fmb_eval_would_choose(goal_policy, context, tmp_path):
    """fmb_perception sees the peg held in the hand (an insert episode starts with it there) within a
    millimetre across its axis and 1.5 mm along it (its tip placed by the free space the cameras' depth
    views see past it, as `fmb eval`) of where the simulator has it and publishes it in the TCP frame;
    the skill server, over DDS, builds its policy's `tcp_goal` from it as `fmb eval --in-hand checked`
    does (`held_in_hand`): with the grasp command while both agree, with the estimate when the command
    is 8 mm off across the axis.
    The task executor, after a grasp, holds the insert goal until perception's estimate of a cloud
    taken after the grasp has arrived, and the skill server builds the goal with that one."""
    from rclpy.parameter import Parameter

    from fmb_ros.perception_node import PerceptionNode
    from fmb_ros.skill_server import SkillServerNode
    from fmb_ros.task_executor import TaskExecutorNode
    from sim.env import make_env
    from sim.objects import ObjectPool, peg_spec
    from sim.panda import FINGER_JOINTS
    from sim.perceived_goals import (
        PerceivedGoalConfig,
        fused_cloud,
        held_in_hand,
        in_hand_disagreement,
        policy_goal,
        scene_views,
    )
    from sim.sensor import SENSORS
    from sim.spatial import compose, inverse, pose

    env = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)), sensor=SENSORS["default"])
    env.reset(seed=3)
    info, tcp, width = dict(env.episode.info), env.tcp_pose(), env.backend.robot_state().gripper_width
    config, rng = PerceivedGoalConfig(image_size=192, points=25_000), np.random.default_rng(0)
    views, _ = scene_views(env, config, rng)  # the cameras' depth, refined on the hand, and the cloud fused from it
    cloud = fused_cloud(env, config, views, rng)
    truth = compose(inverse(tcp), env.object_pose("peg"))  # the peg in the TCP frame, as it sits
    hole = np.asarray(info["targets"]["hole"], float)
    env.close()
    spec = peg_spec(info["peg"])

    def overrides(**values):
        return [Parameter(k, value=v) for k, v in values.items()]

    perception = PerceptionNode(context=context, parameter_overrides=overrides(peg=info["peg"]))
    statuses: list[dict] = []
    perception.publish_status = lambda level, message, values: statuses.append(values)
    skill = SkillServerNode(
        "insert_skill",
        context=context,
        parameter_overrides=overrides(
            skill="insert", checkpoint=str(goal_policy), device="cpu", inference="sync", policy_goal="goal",
            ground_truth_namespace="", held_peg_topic="/fmb_perception/held_peg",
        ),
    )  # fmt: skip
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(skill)
    nodes: list = []  # the task executor and a stand-in grasp server, once made

    def spin_until(predicate, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < end, f"timed out after {timeout:g} s waiting for {what}"
            executor.spin_once(timeout_sec=0.05)

    def look(now: float) -> None:
        """Perception's estimate on the robot's measurements, the cameras' views (depth, camera_info,
        refined pose) and the cloud of one moment, on the skill's clock, as its subscriptions take them."""
        perception.on_tcp_pose(convert.pose_stamped_msg(tcp, "panda_link0", now))
        perception.on_gripper(convert.joint_state_msg(FINGER_JOINTS, [width / 2, width / 2], seconds=now))
        for camera, camera_pose, _, depth in views:
            info_msg = convert.camera_info_msg(camera.width, camera.height, camera.fovy, "", now)
            perception.views.on_info(camera.name, info_msg)
            perception.views.on_depth(camera.name, convert.image_msg(depth, f"{camera.name}_optical_frame", now))
            perception.views.on_pose(
                camera.name, convert.pose_stamped_msg(camera_pose, "panda_link0", now), "panda_link0"
            )
        perception.on_points(convert.point_cloud_msg(cloud, "panda_link0", now))
        perception.on_tick()

    try:
        assert skill.run is not None, skill.error
        assert skill.params["in_hand"] == PerceivedGoalConfig().in_hand == "checked"
        look(skill.now())
        assert statuses[-1]["holding"] is True and statuses[-1]["held_found"] is True, statuses[-1]
        assert statuses[-1]["held_tip"] == "free space", statuses[-1]
        end = time.monotonic() + 10.0
        while skill.inputs.held.pose is None and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
        estimated = skill.inputs.held.pose
        assert estimated is not None, "no held peg reached the skill server"
        # Across the TCP axis to a millimetre and turned by less than 2 deg (modulo the peg's symmetric
        # turns); along it to 1.5 mm (the tip's edge drops out of the sensor's depth: placed by free space).
        offset, angle = in_hand_disagreement(truth, estimated, spec)
        across = np.linalg.norm(compose(inverse(truth), estimated)[:2])  # in the peg's frame: across its axis
        along = compose(inverse(truth), estimated)[2]
        assert across < 0.001 and angle < np.radians(2.0), (across, offset, np.degrees(angle))
        assert abs(along) < 0.0015, (along, offset)

        def goal_of(facts: dict) -> tuple[np.ndarray, dict]:
            """The policy's goal and status after a goal on the hole (the skill's target)."""
            skill.world.set_tcp(tcp, skill.now())
            skill.world.set_episode(facts)
            assert skill.on_goal(convert.pose_stamped_msg(hole, "panda_link0", skill.now())), skill.last_rejection
            values = skill.status_values("running")
            skill.run.cancel(skill.world)
            return np.asarray(skill.run.controller.runner.goal_pose, float), values

        commanded = np.asarray(info["peg_in_tcp"], float)
        checked = PerceivedGoalConfig()
        for command, source in (
            (commanded, "commanded grasp"),
            (compose(pose([0.008, 0, 0]), commanded), "estimated in hand"),
        ):
            facts = {**info, "peg_in_tcp": command.tolist()}
            chosen, expected_source = held_in_hand(checked, command, estimated, spec)
            assert expected_source == source
            goal, values = goal_of(facts)
            np.testing.assert_allclose(goal, policy_goal("tcp_goal", hole, facts, tcp, chosen)[0], atol=1e-9)
            assert values["in_hand_source"] == source and values["in_hand_estimate"].endswith(" s old"), values
            t, r = pose_error(goal, info["targets"]["tcp_goal"])
            assert t < 0.01 and r < np.radians(5.0), (source, t, np.degrees(r))
        # The fingers opened since: that estimate says nothing of the next grasp, and the command stands.
        skill.inputs.on_gripper_state(convert.joint_state_msg(FINGER_JOINTS, [0.04, 0.04], seconds=skill.now()))
        goal, values = goal_of(info)
        assert values["in_hand_source"] == "commanded grasp" and "fingers last opened" in values["in_hand_estimate"]
        np.testing.assert_allclose(goal, policy_goal("tcp_goal", hole, info, tcp)[0], atol=1e-9)

        # The task executor runs grasp -> insert over DDS: a stand-in grasp server answers the grasp goal
        # once the fingers have closed on the peg again, perception looks at the hand seconds later.
        task = tmp_path / "grasp_insert.yaml"
        stages = ["{skill: grasp, target: [0.5, 0.0, 0.1]}", f"{{skill: insert, target: {hole.tolist()}}}"]
        task.write_text("stages:\n" + "".join(f"  - {stage}\n" for stage in stages))
        held_peg = dict(held_peg_topic="/fmb_perception/held_peg", held_peg_wait=30.0)  # the wait, not its end
        planner = TaskExecutorNode(
            context=context, parameter_overrides=overrides(task_file=str(task), ground_truth_namespace="", **held_peg)
        )
        nodes.append(planner)
        grasp = rclpy.create_node("grasp_skill", context=context)
        nodes.append(grasp)
        grasp_goals, reports = [], []
        grasp.create_subscription(PoseStamped, "/grasp_skill/goal", grasp_goals.append, qos.COMMAND)
        grasp.create_subscription(DiagnosticStatus, "/fmb_task_executor/report", reports.append, qos.LATCHED)
        grasp_result = grasp.create_publisher(DiagnosticStatus, "/grasp_skill/result", qos.LATCHED)
        for node in (planner, grasp):
            executor.add_node(node)
        for name in ("grasp", "insert"):  # the goal publishers matched before the first goal goes
            planner._connect(name)
        spin_until(lambda: all(planner.goals[n].get_subscription_count() for n in ("grasp", "insert")), 10.0, "DDS")
        assert planner.on_start(None, Trigger.Response()).success
        spin_until(lambda: grasp_goals, 10.0, "the grasp goal")
        closed = convert.joint_state_msg(FINGER_JOINTS, [width / 2, width / 2], seconds=skill.now())
        skill.inputs.on_gripper_state(closed)  # the grasp closed the fingers, then ends
        stamp = grasp_goals[-1].header.stamp
        done = {"state": "succeeded", "goal_stamp": f"{stamp.sec}.{stamp.nanosec:09d}"}
        grasp_result.publish(convert.status_msg("grasp_skill", "ok", "grasped", done))
        spin_until(lambda: planner.index == 1, 10.0, "the grasp stage's end")
        spin_until(lambda pause=time.monotonic() + 1.0: time.monotonic() > pause, 5.0, "a second")
        assert not planner.goal_sent and "waiting for a held-peg estimate" in planner.waiting  # the insert goal
        assert "fingers last opened" in skill.inputs.held.recent(skill.now()).why  # what the goal would find now
        look(skill.now())
        assert statuses[-1]["held_found"] is True and statuses[-1]["held_tip"] == "free space", statuses[-1]
        spin_until(lambda: planner.goal_sent and skill.goal_stamp == planner.goal_stamp, 10.0, "the insert goal")
        facts = skill.run.goal_facts
        assert facts["in_hand_source"] in ("commanded grasp", "estimated in hand"), facts
        assert facts["in_hand_estimate"].endswith(" s old"), facts
        spin_until(lambda: any("attempt 1: a held-peg estimate" in r.message for r in reports), 5.0, "the report")
    finally:
        executor.shutdown()
        for node in (skill, perception, *nodes):
            node.destroy_node()
