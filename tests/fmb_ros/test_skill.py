"""SkillExecution + WorldMirror + SafetyFilter driving the simulator in-process (no ROS graph)."""

import numpy as np
import pytest

from fmb_ros.exceptions import GoalError
from fmb_ros.skill import SkillExecution, State
from fmb_ros.world import WorldMirror
from policies.runtime.controllers import make_controller
from policies.runtime.runner import RunnerConfig
from sim.safety import SafetyFilter, Verdict

pytestmark = pytest.mark.train

BASE = "panda_link0"
PERIOD = 0.1


@pytest.fixture(scope="module")
def env():
    from sim.env import make_env

    e = make_env("grasp", seed=0)
    yield e
    e.close()


def mirror_of(env, world: WorldMirror, t: float) -> None:
    """What the sim node publishes and the skill node subscribes to, without the messages."""
    obs = env.last_observation
    world.set_tcp(obs["tcp_pose"].astype(float), t)
    world.q, world.dq = obs["q"].astype(float), obs["dq"].astype(float)
    world.gripper = float(obs["gripper"][0])
    world.set_episode(env.episode.info)
    keys = [o.key for o in env.episode.objects]
    world.set_objects(keys, [env.object_pose(k) for k in keys])


def test_expert_grasp_through_the_safety_filter_succeeds(env):
    env.reset(seed=0)
    world = WorldMirror()
    mirror_of(env, world, 0.0)
    run = SkillExecution("grasp", make_controller("grasp", seed=0), SafetyFilter(), BASE)
    run.start(env.object_pose("peg"), BASE, world, 0.0)
    t, evaluation, success = 0.0, None, False
    for _ in range(80):
        tick = run.tick(world, t, evaluation)
        if tick.state is not State.RUNNING:
            break
        assert tick.command.verdict in (Verdict.PASSED, Verdict.LIMITED)
        last = tick.command
        _, _, _, _, info = env.step_pose(tick.command.pose, tick.command.close_gripper)
        t += PERIOD
        mirror_of(env, world, t)
        evaluation = {"success": info["success"], "failed": info["failed"], "progress": info["progress"]}
        success = info["success"]
    assert success and run.state is State.SUCCEEDED, run.message
    assert tick.changed and tick.command is None  # the last command (holding the peg) stands
    assert run.score == pytest.approx(1.0)
    for _ in range(10):  # the arm settles at the last command, and the task stays done
        _, _, _, _, info = env.step_pose(last.pose, last.close_gripper)
    assert info["success"], info["metrics"]


def test_goals_are_checked(env):
    env.reset(seed=1)
    world = WorldMirror()
    run = SkillExecution("grasp", make_controller("grasp"), SafetyFilter(), BASE)
    goal = np.array([0.5, 0.0, 0.1, 0, 0, 0, 1.0])
    with pytest.raises(GoalError, match="no observation"):
        run.start(goal, BASE, world, 0.0)
    mirror_of(env, world, 0.0)
    with pytest.raises(GoalError, match="frame 'map' is unknown"):
        run.start(goal, "map", world, 0.0)
    with pytest.raises(GoalError, match="outside the workspace"):
        run.start([2.0, 0, 0.1, 0, 0, 0, 1], BASE, world, 0.0)
    with pytest.raises(GoalError, match="7 finite numbers"):
        run.start([np.nan, 0, 0.1, 0, 0, 0, 1], BASE, world, 0.0)
    blind = WorldMirror()
    blind.set_tcp(world.tcp, 0.0)
    with pytest.raises(GoalError, match="ground truth"):
        run.start(goal, BASE, blind, 0.0)
    assert run.state is State.IDLE
    run.start(goal, BASE, world, 0.0)
    with pytest.raises(GoalError, match="already running"):
        run.start(goal, BASE, world, 0.0)


def test_stale_observations_hold_without_advancing_the_controller(env):
    env.reset(seed=2)
    world = WorldMirror()
    mirror_of(env, world, 0.0)
    run = SkillExecution("grasp", make_controller("grasp"), SafetyFilter(), BASE)
    run.start(world.tcp, BASE, world, 0.0)
    tick = run.tick(world, 5.0)  # the newest observation is 5 s old
    assert tick.command.verdict is Verdict.STALE and np.allclose(tick.command.pose, world.tcp)
    assert run.step == 0 and run.state is State.RUNNING and "holding" in run.message


def test_cancel_holds_and_a_controller_error_aborts(env):
    env.reset(seed=3)
    world = WorldMirror()
    mirror_of(env, world, 0.0)
    run = SkillExecution("grasp", make_controller("grasp"), SafetyFilter(), BASE)
    run.start(world.tcp, BASE, world, 0.0)
    tick = run.cancel(world, "operator canceled")
    assert tick.state is State.CANCELED and tick.changed and np.allclose(tick.command.pose, world.tcp)
    assert not run.cancel(world).changed

    class Broken:
        def reset(self, env):
            pass

        def act(self, env):
            raise ValueError("boom")

    run = SkillExecution("grasp", make_controller("grasp")._replace(runner=Broken()), SafetyFilter(), BASE)
    run.start(world.tcp, BASE, world, 0.0)
    tick = run.tick(world, 0.0)
    assert tick.state is State.ABORTED and "ValueError: boom" in run.message


def test_nan_action_is_rejected_by_the_filter(env):
    env.reset(seed=4)
    world = WorldMirror()
    mirror_of(env, world, 0.0)

    class NaNs:
        def reset(self, env):
            pass

        def act(self, env):
            return np.full(7, np.nan)

    run = SkillExecution("grasp", make_controller("grasp")._replace(runner=NaNs()), SafetyFilter(), BASE)
    run.start(world.tcp, BASE, world, 0.0)
    tick = run.tick(world, 0.0)
    assert tick.command.verdict is Verdict.REJECTED and np.allclose(tick.command.pose, world.tcp)


def test_unknown_skill_and_missing_checkpoint_are_clear_errors():
    from fmb_core.errors import FmbError

    with pytest.raises(FmbError, match="unknown skill 'juggle'; known: .*grasp"):
        make_controller("juggle")
    with pytest.raises(FmbError, match="no such checkpoint"):
        make_controller("grasp", checkpoint="/nonexistent/run")


def test_policy_checkpoint_runs_through_the_skill(tmp_path):
    """A (barely trained) policy acts through SkillExecution: every command comes out of the filter."""
    pytest.importorskip("torch", reason="policies need the 'learn' extra (torch)")
    from policies.train import train
    from sim.collect import RunSpec, collect
    from sim.env import make_env
    from tests.policies.conftest import tiny, tiny_training

    collect(RunSpec("grasp", families=("rectangle",)), tmp_path / "demo", episodes=1, progress=False)
    train([tmp_path / "demo"], tmp_path / "run", tiny(), tiny_training(steps=3), progress=False, log=lambda m: None)
    controller = make_controller(
        "grasp", checkpoint=str(tmp_path / "run"), device="auto", runner_config=RunnerConfig(num_samples=3)
    )
    assert controller.device in ("cpu", "cuda") and not controller.privileged
    assert controller.description.startswith("policy ") and controller.description.endswith(controller.device)
    env = make_env("grasp", seed=5)
    env.reset(seed=5)
    world = WorldMirror()
    mirror_of(env, world, 0.0)
    world.objects, world._episode = {}, type(world.episode)()  # a policy needs no ground truth
    run = SkillExecution("grasp", controller, SafetyFilter(), BASE, max_steps=3)
    run.start(world.tcp, BASE, world, 0.0)
    t = 0.0
    for _ in range(4):
        tick = run.tick(world, t)
        if tick.state is not State.RUNNING:
            break
        assert tick.command.verdict in (Verdict.PASSED, Verdict.LIMITED)
        env.step_pose(tick.command.pose, tick.command.close_gripper)
        t += PERIOD
        obs = env.last_observation
        world.set_tcp(obs["tcp_pose"].astype(float), t)
    assert run.state is State.FAILED and "step limit (3)" in run.message  # no judge: ends at the limit
    chunks, tcp, chosen, scores = controller.runner.candidates.last  # what the markers show
    assert chunks.shape[0] == 3 and chunks.shape[2] == 7 and tcp.shape == (7,) and chosen == 0
    env.close()


def test_place_expert_plans_with_the_skill_nodes_kinematics():
    """The place_on_fixture expert checks its path with inverse kinematics: through the mirror it
    uses fmb_ros.kinematics (the Panda model alone), and the placement succeeds."""
    from fmb_ros.kinematics import PandaKinematics
    from sim.env import make_env

    env = make_env("place_on_fixture", seed=0)
    env.reset(seed=0)
    world = WorldMirror()
    world.kinematics = PandaKinematics()
    mirror_of(env, world, 0.0)
    q = env.joint_positions()
    fk = world.kinematics.forward(q)[0]
    assert np.allclose(fk[:3], env.tcp_pose()[:3], atol=1e-6)  # the same model as the simulator
    run = SkillExecution("place_on_fixture", make_controller("place_on_fixture"), SafetyFilter(), BASE)
    run.start(world.tcp, BASE, world, 0.0)
    t, evaluation = 0.0, None
    for _ in range(90):
        tick = run.tick(world, t, evaluation)
        if tick.state is not State.RUNNING:
            break
        if tick.command is not None and tick.command.pose is not None:
            _, _, _, _, info = env.step_pose(tick.command.pose, tick.command.close_gripper)
        t += PERIOD
        mirror_of(env, world, t)
        evaluation = {"success": info["success"], "failed": info["failed"], "progress": info["progress"]}
    assert run.state is State.SUCCEEDED, run.message
    env.close()


def test_the_planned_approach_carries_the_held_peg_above_its_hole_before_the_skill_acts():
    """With `approach` (a chain's learned insert server), the skill first moves the held peg to
    40 mm above its goal through the safety filter, without counting those steps, and the
    skill then acts from there and inserts (fmb eval's `PlannedApproach`, here on a robot's
    world mirror)."""
    from sim.env import make_env
    from sim.experts.chain import APPROACH_REACHED, hover_pose

    env = make_env("insert", seed=0)
    env.reset(seed=2)
    world = WorldMirror()
    mirror_of(env, world, 0.0)
    run = SkillExecution("insert", make_controller("insert", seed=0), SafetyFilter(), BASE, approach=True)
    run.start(np.asarray(env.episode.info["targets"]["hole"], float), BASE, world, 0.0)
    hover = hover_pose(np.asarray(env.episode.info["targets"]["tcp_goal"], float), "insert")
    assert run.moving is not None
    t, evaluation, success, handed_over = 0.0, None, False, None
    for _ in range(150):
        tick = run.tick(world, t, evaluation)
        if tick.state is not State.RUNNING:
            break
        if handed_over is None and run.moving is None:
            handed_over = np.linalg.norm(world.tcp_pose()[:3] - hover[:3])
        if run.moving is not None:
            assert run.step == 0  # the approach's steps are not the skill's
        _, _, _, _, info = env.step_pose(tick.command.pose, tick.command.close_gripper)
        t += PERIOD
        mirror_of(env, world, t)
        evaluation = {"success": info["success"], "failed": info["failed"], "progress": info["progress"]}
        success = info["success"]
    env.close()
    assert run.approach_steps > 0 and handed_over is not None and handed_over < 2 * APPROACH_REACHED, handed_over
    assert success and run.state is State.SUCCEEDED, run.message


def test_stage_judgement():
    from fmb_ros.skill import stage_judgement

    assert stage_judgement(None, 0, 3) is None
    plain = {"success": True, "failed": False, "progress": 1.0}
    assert stage_judgement(plain, 0, 3) is plain  # not a chain
    assert stage_judgement({"success": False, "failed": False, "progress": 0.5, "stage": 1}, 0, 3)["success"]
    mid = stage_judgement({"success": False, "failed": False, "progress": 0.5, "stage": 1}, 1, 3)
    assert not mid["success"] and mid["progress"] == pytest.approx(0.5)
    assert stage_judgement({"success": True, "failed": False, "progress": 1.0, "stage": 2}, 2, 3)["success"]


def test_chain_of_skills_in_one_scene():
    """grasp -> rotate -> insert as three skill runs, each seeing its stage of the vertical chain and
    judged by the chain's stage counter: the chain task succeeds."""
    from fmb_ros.kinematics import PandaKinematics
    from fmb_ros.skill import stage_judgement
    from sim.env import make_env

    env = make_env("vertical_chain", seed=0)
    env.reset(seed=0)
    names = env.episode.info["stage_names"]
    world = WorldMirror()
    world.kinematics = PandaKinematics()
    t, info = 0.0, None
    for index, skill in enumerate(names):
        mirror_of(env, world, t)
        world.set_episode(env.episode.info["stages"][index])
        run = SkillExecution(skill, make_controller(skill), SafetyFilter(), BASE)
        run.start(world.tcp, BASE, world, t)
        evaluation = None
        for _ in range(run.max_steps + 1):
            tick = run.tick(world, t, evaluation)
            if tick.state is not State.RUNNING:
                break
            _, _, _, _, info = env.step_pose(tick.command.pose, tick.command.close_gripper)
            t += PERIOD
            mirror_of(env, world, t)
            world.set_episode(env.episode.info["stages"][index])
            chain = {**{k: info[k] for k in ("success", "failed", "progress")}, "stage": env.episode.info["stage"]}
            evaluation = stage_judgement(chain, index, len(names))
        assert run.state is State.SUCCEEDED, f"{skill}: {run.message}"
    assert info["success"]
    env.close()


def test_goal_conditioned_policy_takes_its_goal_from_the_goal_message(tmp_path):
    """On a robot (no ground truth) a goal-conditioned policy's goal is the goal message's pose (the
    target perception estimated); in simulation `auto` takes the task's target, `goal` the message."""
    pytest.importorskip("torch", reason="policies need the 'learn' extra (torch)")
    from policies.train import train
    from sim.collect import RunSpec, collect
    from sim.env import make_env
    from tests.policies.conftest import tiny, tiny_training

    collect(RunSpec("insert", families=("rectangle",)), tmp_path / "demo", episodes=1, progress=False)
    train(
        [tmp_path / "demo"],
        tmp_path / "run",
        tiny(goal="hole"),
        tiny_training(steps=2),
        progress=False,
        log=lambda m: None,
    )
    controller = make_controller("insert", checkpoint=str(tmp_path / "run"))
    env = make_env("insert", seed=3)
    env.reset(seed=3)
    hole = np.asarray(env.episode.info["targets"]["hole"], float)
    perceived = hole + np.array([0.002, -0.001, 0.0, 0.0, 0.0, 0.0, 0.0])
    try:
        robot = WorldMirror()  # what a robot gives: observations, no ground truth
        obs = env.last_observation
        robot.set_tcp(obs["tcp_pose"].astype(float), 0.0)
        run = SkillExecution("insert", controller, SafetyFilter(), BASE, max_steps=2)
        run.start(perceived, BASE, robot, 0.0)
        np.testing.assert_allclose(controller.runner.goal_pose, perceived)
        tick = run.tick(robot, 0.0)
        assert tick.command is not None and tick.command.verdict in (Verdict.PASSED, Verdict.LIMITED)
        sim = WorldMirror()
        mirror_of(env, sim, 0.0)
        SkillExecution("insert", controller, SafetyFilter(), BASE, max_steps=2).start(perceived, BASE, sim, 0.0)
        np.testing.assert_allclose(controller.runner.goal_pose, hole)  # auto: the task's target
        SkillExecution("insert", controller, SafetyFilter(), BASE, 2, policy_goal="goal").start(
            perceived, BASE, sim, 0.0
        )
        np.testing.assert_allclose(controller.runner.goal_pose, perceived)
        with pytest.raises(Exception, match="unknown policy_goal 'oracle'; known: auto, goal"):
            SkillExecution("insert", controller, SafetyFilter(), BASE, policy_goal="oracle")
    finally:
        env.close()
