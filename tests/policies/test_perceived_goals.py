"""`fmb eval --goals perceived`: goals from perception (real open3d on the simulator's cloud), every
action through the safety filter, perception failures recorded; `--goals truth` as before; and
`fmb train --goal-noise`."""

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("open3d", reason="perception needs open3d (the 'perception' extra)")

from fmb.cli import main  # noqa: E402
from policies.common.dataset import SequenceDataset  # noqa: E402
from policies.config import TrainConfig  # noqa: E402
from policies.experiments.evaluate import PolicyRunSpec, evaluate  # noqa: E402
from policies.runtime.perceived import RobotLoopRunner  # noqa: E402
from policies.runtime.runner import PolicyRunner  # noqa: E402
from policies.train import train  # noqa: E402
from sim.env import make_env  # noqa: E402
from sim.objects import ObjectPool  # noqa: E402
from sim.perceived_goals import (  # noqa: E402
    DEFAULT_GOAL_SOURCE,
    TRUTH_LABEL,
    PerceivedGoalConfig,
    goals_from_estimate,
)
from sim.perception import ObjectEstimate, PerceptionConfig, SceneEstimate, pose_error  # noqa: E402
from sim.rollout import run_episode  # noqa: E402
from tests.policies.conftest import tiny, tiny_training  # noqa: E402

pytestmark = pytest.mark.train

SMALL = PerceivedGoalConfig(image_size=192, points=25_000)  # about 2-3 s per estimate on one core


@pytest.fixture(scope="module")
def goal_run(state_store, tmp_path_factory):
    """A tiny BC policy conditioned on `tcp_goal` (the hand's pose with the peg in its hole)."""
    run = tmp_path_factory.mktemp("goal_run") / "run"
    train([state_store.root], run, tiny(policy_type="bc", goal="tcp_goal"), tiny_training(steps=3), progress=False)
    return run


def test_goals_from_an_exact_estimate_are_the_tasks_targets():
    env = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)))
    _, info = env.reset(seed=3)
    targets = info["episode"]["targets"]
    exact = SceneEstimate(
        {"board": ObjectEstimate(env.object_pose("board"), 1.0, 0.0, 500), "peg": ObjectEstimate(None, 0.2, 0.0, 40)},
        {},
        np.asarray(targets["hole"]),
        0.0,
        2,
    )
    goals = goals_from_estimate(exact, info["episode"], env.tcp_pose(), ("tcp_goal", "hole"), 0.5)
    assert goals.failure == "" and goals.in_hand_source == "commanded grasp"
    t, r = pose_error(goals.targets["tcp_goal"], targets["tcp_goal"])
    assert t < 1e-6 and r < 1e-6
    # the peg (a grasp's object) was below the threshold: that goal fails, naming why
    missing = goals_from_estimate(exact, info["episode"], env.tcp_pose(), ("grasp",), 0.5)
    assert "grasp" not in missing.targets and "fitness 0.200 below min_fitness 0.5" in missing.failure
    env.close()


def test_tcp_goal_from_the_estimated_in_hand_pose_or_the_grasp_command():
    from sim.perceived_goals import goal_estimator, perceive_goals, perception_errors
    from sim.sensor import SENSORS
    from sim.spatial import compose, pose

    env = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)), sensor=SENSORS["default"])
    env.reset(seed=3)
    info = env.episode.info
    estimator = goal_estimator(info["peg"], SMALL)
    truth = {o.key: env.object_pose(o.key) for o in env.episode.objects}
    for source, name in (("commanded", "commanded grasp"), ("estimated", "estimated in hand")):
        config = dataclasses.replace(SMALL, in_hand=source)
        goals = perceive_goals(env, estimator, config, np.random.default_rng(0), ("tcp_goal",))
        assert goals.failure == "" and goals.in_hand_source == name and goals.held.pose is not None
        t, r = pose_error(goals.targets["tcp_goal"], info["targets"]["tcp_goal"])
        assert t < 0.01 and r < np.radians(5.0), (source, t, np.degrees(r))
        errors = perception_errors(goals.estimate, truth, info, estimator, goals.held, env.tcp_pose())
        assert errors["in_hand"]["translation_mm"] < 10.0 and "peg" not in errors
    # checked: a command 8 mm off across the TCP axis (the grasp slipped) is replaced by what the
    # cameras see, and the goal stays right; the right command stands
    checked = dataclasses.replace(SMALL, in_hand="checked")
    goals = perceive_goals(env, estimator, checked, np.random.default_rng(0), ("tcp_goal",))
    assert goals.in_hand_source == "commanded grasp"
    info["peg_in_tcp"] = compose(pose([0.008, 0.0, 0.0]), info["peg_in_tcp"]).tolist()
    goals = perceive_goals(env, estimator, checked, np.random.default_rng(0), ("tcp_goal",))
    assert goals.in_hand_source == "estimated in hand"
    t, r = pose_error(goals.targets["tcp_goal"], info["targets"]["tcp_goal"])
    assert t < 0.01 and r < np.radians(5.0), (t, np.degrees(r))
    # the held peg cannot be found with an impossible threshold: a failure naming it, no goal
    strict = dataclasses.replace(SMALL, in_hand="estimated", perception=PerceptionConfig(min_fitness=1.0))
    goals = perceive_goals(env, goal_estimator(info["peg"], strict), strict, np.random.default_rng(0), ("tcp_goal",))
    assert goals.targets == {} and "held peg was not found in the hand" in goals.failure
    env.close()


def test_in_hand_disagreement_is_the_centroids_distance_modulo_the_pegs_symmetric_turns():
    from sim.objects import peg_spec
    from sim.perceived_goals import in_hand_disagreement, nearest_turn
    from sim.spatial import compose, pose, quat_from_yaw

    held = pose([0.0, 0.0, -0.03])
    hexagon, rectangle = peg_spec("peg_hexagon_S_short"), peg_spec("peg_rectangle_S_short")
    along, across = compose(pose([0.0, 0.0, 0.005]), held), compose(pose([0.003, 0.004, 0.0]), held)
    assert in_hand_disagreement(held, along, hexagon) == pytest.approx((0.005, 0.0), abs=1e-9)
    assert in_hand_disagreement(held, across, hexagon)[0] == pytest.approx(0.005)
    third = compose(held, pose([0.0, 0.0, 0.0], quat_from_yaw(2 * np.pi / 3)))  # about the section's centroid
    assert in_hand_disagreement(held, third, hexagon)[1] == pytest.approx(0.0, abs=1e-6)  # looks the same
    assert in_hand_disagreement(held, third, rectangle)[1] == pytest.approx(np.pi / 3, abs=1e-6)
    # taken, an estimate is turned by the peg's look-alike turns to the command's way round
    three_prong = peg_spec("peg_three_prong_M_long")  # 3-fold to 2 mm (LOOK_ALIKE), not to 0.5 mm
    c = three_prong.section().centroid
    turn = pose([0.0, 0.0, 0.0], quat_from_yaw(2 * np.pi / 3))
    about_centroid = compose(held, compose(pose([c.x, c.y, 0.0]), compose(turn, pose([-c.x, -c.y, 0.0]))))
    assert in_hand_disagreement(held, about_centroid, three_prong) == pytest.approx((0.0, 0.0), abs=1e-6)
    shifted = compose(pose([0.004, 0.0, 0.0]), about_centroid)
    turned = nearest_turn(shifted, held, three_prong)
    assert pose_error(turned, held)[1] == pytest.approx(0.0, abs=1e-6)
    assert in_hand_disagreement(held, turned, three_prong)[0] == pytest.approx(0.004)


@pytest.mark.parametrize("task", ["insert", "grasp"])
def test_gravmap_subgoals_from_perception_match_the_privileged_ones(task):
    from policies.gravmap.subgoals import PERCEIVED_GOALS, perceived_subgoals, privileged_subgoals
    from sim.perceived_goals import goal_estimator, perceive_goals

    env = make_env(task, objects=ObjectPool.fmb(families=("rectangle",)))
    env.reset(seed=3)
    info = env.episode.info
    goals = perceive_goals(
        env, goal_estimator(info["peg"], SMALL), SMALL, np.random.default_rng(0), PERCEIVED_GOALS[task]
    )
    assert goals.failure == ""
    seen = perceived_subgoals(task, info, goals, env.tcp_pose())
    truth = privileged_subgoals(env)
    assert [s.name for s in seen] == [s.name for s in truth] and [s.openness for s in seen] == [
        s.openness for s in truth
    ]
    for a, b in zip(seen, truth):
        assert np.linalg.norm(a.position - b.position) < 0.006, (task, a.name, a.position - b.position)
    env.close()


def test_eval_perceived_goals_end_to_end(goal_run, tmp_path, capsys):
    out = tmp_path / "result.json"
    args = ["eval", "--policy", str(goal_run), "--episodes", "1", "--families", "rectangle"]  # perceived: the default
    assert main([*args, "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["runner"]["goals"] == "perceived" and result["goals"]["source"] == "perceived"
    (row,) = result["episodes"]
    assert row["goals"] == "perceived" and row["in_hand_source"] == "commanded grasp"
    assert row["perception_failure"] == ""
    # the peg is held: its in-hand estimate and the grasp command are measured in the TCP frame
    for key in ("board", "hole", "in_hand", "in_hand_commanded"):
        assert key in row["perception"]
    assert "peg" not in row["perception"]
    assert row["perception"]["hole"]["translation_mm"] < 10.0  # the board is easy to see
    assert row["perception"]["in_hand_commanded"]["translation_mm"] < 5.0  # the grasp slips a little
    assert result["runner"]["sensor"] == result["goals"]["sensor"] == "default"  # a robot's camera
    assert sum(row["safety"].values()) == row["steps"] > 0
    summary = result["goals"]
    assert summary["perception_failures"] == 0 and summary["perception_errors"]["hole"]["n"] == 1
    assert sum(summary["safety_verdicts"].values()) == row["steps"]
    # `fmb results` puts it in a table beside others, with its goal error; bad input names the file
    capsys.readouterr()
    assert main(["results", str(out), str(out), "--labels", "a,b"]) == 0
    table = capsys.readouterr().out.splitlines()
    hole = f"{row['perception']['hole']['translation_mm']:.2f} mm"
    assert len(table) == 4 and table[2].startswith("| a | all train | perceived | default | ") and hole in table[2]
    assert main(["results", str(out), str(out)]) == 2  # two rows, one label
    assert "share a row label" in capsys.readouterr().err
    assert main(["results", str(out), str(tmp_path / "missing.json")]) == 2
    assert "missing.json: missing" in capsys.readouterr().err
    # each side camera was refined on the hand, and that is in the row and the summary
    assert [c["camera"] for c in row["hand_eye"]] == ["side_1", "side_2"]
    for camera in row["hand_eye"]:
        assert camera["applied"], camera["reason"]
        assert camera["error_after_mm"] < camera["error_before_mm"]
    assert summary["hand_eye"]["enabled"] and summary["hand_eye"]["applied"] == 2
    off = tmp_path / "off.json"
    assert main([*args, "--hand-eye", "off", "--json", str(off), "--quiet"]) == 0
    assert json.loads(off.read_text())["episodes"][0]["hand_eye"] == []
    capsys.readouterr()
    assert main(["results", str(out), str(off), "--labels", "on,off"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "| perceived | default |" in table[2] and "| perceived, hand-eye off | default |" in table[3]


def test_perception_failure_is_a_recorded_failed_episode(goal_run):
    impossible = PerceivedGoalConfig(image_size=96, points=5000, perception=PerceptionConfig(min_fitness=1.0))
    spec = PolicyRunSpec(str(goal_run), families=("rectangle",), goals="perceived", perception=impossible)
    result = evaluate(spec, 1, progress=False)
    (row,) = result["episodes"]
    assert row["success"] is False and row["steps"] == 0
    assert "board" in row["perception_failure"] and row["aborted"].startswith("perception failure")
    assert result["goals"]["perception_failures"] == 1 and result["overall"]["aborted_episodes"] == 1
    assert result["goals"]["perception_failure_reasons"][0]["reason"] == row["perception_failure"]


class _Emitting:
    """A goal-conditioned controller (sim.contracts.GoalConditioned) that emits fixed actions."""

    goal_key = "tcp_goal"
    needs_subgoals = False

    def __init__(self, action):
        self.rng = np.random.default_rng(0)
        self.goal_pose = None
        self.action = np.asarray(action, float)

    def reset(self, env, goal=None, subgoals=None):  # as PolicyRunner.reset: the task's target unless given
        self.goal_pose = np.asarray(env.episode.info["targets"]["tcp_goal"] if goal is None else goal)

    def act(self, env):
        return self.action.copy()


@pytest.mark.slow
def test_safety_filter_stops_nan_and_limits_wild_actions():
    env = make_env("insert", objects=ObjectPool.fmb(families=("rectangle",)))
    nan = RobotLoopRunner(_Emitting([np.nan] * 6 + [1.0]), SMALL)
    result = run_episode(env, nan, seed=5)
    start = np.asarray(env.episode.tcp_pose)
    report = nan.episode_report()
    assert report["safety"] == {"rejected": result.steps} and "NaN" in report["safety_stop"]
    assert np.linalg.norm(env.tcp_pose()[:3] - start[:3]) < 0.01  # held where it was
    assert nan.runner.goal_pose is not None  # from the estimate, not the task's truth
    assert not np.array_equal(nan.runner.goal_pose, env.episode.info["targets"]["tcp_goal"])
    up = RobotLoopRunner(_Emitting([0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 1.0]), SMALL)  # 5 m per step: out of bounds
    result = run_episode(env, up, seed=5)
    assert up.episode_report()["safety"].get("limited", 0) == result.steps
    assert env.tcp_pose()[2] <= env.config.workspace.high[2] + 0.01
    env.close()


def test_truth_goals_keep_todays_runner(goal_run):
    assert DEFAULT_GOAL_SOURCE == "perceived"
    spec = PolicyRunSpec(str(goal_run), families=("rectangle",), goals="truth")
    env, runner = spec.build()
    assert type(runner) is PolicyRunner  # no perception, no filter: the upper bound as before
    env.close()
    result = evaluate(spec, 1, progress=False)
    assert result["goals"]["source"] == TRUTH_LABEL and result["episodes"][0]["goals"] == TRUTH_LABEL
    assert "safety" not in result["episodes"][0]


def test_the_policys_own_cloud_is_fused_as_the_robot_fuses_it():
    """With perceived goals the policy's cloud is fused from each side camera's pose refined on the
    hand (as `fmb_sim_robot` and `fmb_cloud_fusion` publish it), nearer the camera's true pose than
    the calibration it starts from; with truth goals, or with the refinement off, as calibrated."""
    from sim.perception import pose_to_matrix
    from sim.perception.hand_eye import HandEyeConfig, table_centre

    observation = {"cameras": ["side_1", "side_2"], "image_size": [256, 256], "point_cloud": 2048}
    spec = PolicyRunSpec("unused", families=("rectangle",))
    assert spec.goals == "perceived" and spec.sensor_name == "default"
    env = spec._env("insert", observation)
    assert env.config.hand_eye.enabled
    env.reset(seed=3)
    specs = {c.name: c for c in env.config.camera_specs()}
    centre = np.array([*table_centre(env.config.workspace), 1.0])
    moved = 0
    for name, used in env.fused_camera_poses.items():
        true = pose_to_matrix(env.backend.camera_pose(specs[name]))
        seen = np.linalg.inv(true) @ centre  # the table centre in the camera's frame

        def error(pose, seen=seen):  # where a pose puts what the camera sees at the table centre [m]
            return np.linalg.norm((pose_to_matrix(pose) @ seen)[:3] - centre[:3])

        believed = env.calibrated_camera_pose(name)
        assert error(used) <= error(believed) + 1e-6, (name, error(used), error(believed))
        moved += not np.allclose(used, believed)
    assert moved >= 1
    env.close()
    for other in (dataclasses.replace(spec, goals="truth"),
                  dataclasses.replace(spec, perception=PerceivedGoalConfig(hand_eye=HandEyeConfig(enabled=False)))):
        env = other._env("insert", observation)
        assert not env.config.hand_eye.enabled
        env.close()


def test_goal_noise_changes_only_the_goal_features(state_store, goal_run):
    from policies.cli import parse_goal_noise
    from policies.runtime.policy import Policy

    assert TrainConfig().goal_noise_position == 0.0 and TrainConfig().goal_noise_rotation == 0.0
    assert parse_goal_noise("") == {}
    noise = parse_goal_noise("1.0,2.0")
    assert noise["goal_noise_position"] == pytest.approx(0.001)
    assert noise["goal_noise_rotation"] == pytest.approx(np.radians(2.0))
    config = Policy.load(goal_run, "cpu").config
    data = SequenceDataset([state_store], config, progress=False)
    clean = data.sample(32, np.random.default_rng(1))["state"]
    assert np.array_equal(clean, data.sample(32, np.random.default_rng(1))["state"])  # off: unchanged
    data.goal_noise = (0.001, np.radians(1.0))
    noisy = data.sample(32, np.random.default_rng(1))["state"]
    goal = data._goal_columns
    assert not np.allclose(noisy[..., goal], clean[..., goal])
    rest = np.ones(clean.shape[-1], bool)
    rest[goal] = False
    np.testing.assert_array_equal(noisy[..., rest], clean[..., rest])
    # one perturbation per window: the goal's offset is the same at both observation steps
    shift = noisy[..., goal][..., :3] - clean[..., goal][..., :3]
    np.testing.assert_allclose(shift[:, 0], shift[:, 1], atol=1e-5)


def test_train_command_stores_goal_noise(state_store, tmp_path, capsys):
    args = ["train", "--data", str(state_store.root), "--out", str(tmp_path / "run"), "--goal", "tcp_goal"]
    args += ["--policy-type", "bc", "--steps", "2", "--batch-size", "8", "--device", "cpu", "--quiet"]
    assert main([*args, "--goal-noise", "1.5,0.5"]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["train"]["goal_noise_position"] == pytest.approx(0.0015)
    assert run["train"]["goal_noise_rotation"] == pytest.approx(np.radians(0.5))
    assert main(["train", "--data", str(state_store.root), "--out", str(tmp_path / "r2"), "--goal-noise", "1"]) == 2


def test_grasp_goal_keeps_the_hand_forward_when_the_peg_is_seen_end_for_end():
    """A lying peg registered with its ends swapped (the cue the sensor noise hides) gives a grasp
    from above, facing forward: about the vertical, the task's grasp turned about the TCP axis;
    about a horizontal axis (upside down), the task's grasp itself."""
    from scipy.spatial.transform import Rotation

    from sim.perceived_goals import policy_goal
    from sim.perception import end_flips, matrix_to_pose, pose_to_matrix
    from sim.spatial import compose, inverse, pose

    env = make_env("grasp", objects=ObjectPool.fmb(families=("rectangle",)))
    for seed in range(20):
        _, info = env.reset(seed=seed)
        if not info["episode"]["standing"]:
            break
    facts, targets = info["episode"], info["episode"]["targets"]
    peg = np.asarray(targets["peg_start"])  # where the task's grasp was planned (it then settles)
    exact, _ = policy_goal("grasp", peg, facts, env.tcp_pose())
    assert np.allclose(exact, targets["grasp"], atol=1e-9)  # an exact estimate: the task's target
    centre = pose(peg[:3])
    half_turn = compose(centre, compose(pose([0, 0, 0], Rotation.from_euler("z", np.pi).as_quat()), inverse(centre)))
    goal, _ = policy_goal("grasp", compose(half_turn, peg), facts, env.tcp_pose())
    forward = Rotation.from_quat(goal[3:]).apply([1.0, 0.0, 0.0])[0]
    _, turn = pose_error(goal, targets["grasp"])
    assert forward > 0 and turn < np.radians(1.0), (forward, np.degrees(turn))
    # ends swapped about a horizontal axis (the peg seen upside down): its end flip is the truth,
    # and the only one whose grasp comes from above
    length = {s.part_name: s for s in ObjectPool.fmb().pegs}[facts["peg"]].length_m
    horizontal = [
        F
        for F in end_flips(length)
        if abs((pose_to_matrix(peg)[:3, :3] @ Rotation.from_matrix(F[:3, :3]).as_rotvec())[2]) < 0.1
    ]
    assert horizontal  # a lying rectangle: one flip axis across the peg lies flat
    for F in horizontal:
        upside_down = matrix_to_pose(pose_to_matrix(peg) @ F)
        goal, _ = policy_goal("grasp", upside_down, facts, env.tcp_pose())
        t, r = pose_error(goal, targets["grasp"])
        assert t < 1e-6 and r < 1e-6, (t, np.degrees(r))
    env.close()


def test_grasp_goal_takes_the_turn_of_a_symmetric_prism_that_grasps_from_above():
    """A lying star registered one turn (72 deg) off about its axis, which its cloud cannot show:
    the goal is the task's grasp, not one 72 deg from the vertical."""
    from scipy.spatial.transform import Rotation

    from sim.perceived_goals import policy_goal
    from sim.spatial import compose, inverse, pose

    env = make_env("grasp", objects=ObjectPool.fmb(families=("star",)))
    for seed in range(20):
        _, info = env.reset(seed=seed)
        if not info["episode"]["standing"]:
            break
    facts, targets = info["episode"], info["episode"]["targets"]
    peg = np.asarray(targets["peg_start"])
    spec = {s.part_name: s for s in ObjectPool.fmb().pegs}[facts["peg"]]
    centroid = pose([*spec.section().centroid.coords[0], 0.0])
    about_axis = pose([0, 0, 0], Rotation.from_euler("z", 0.4 * np.pi).as_quat())  # a star's 72 deg
    turn = compose(centroid, compose(about_axis, inverse(centroid)))
    one_turn_off = compose(peg, turn)
    goal, _ = policy_goal("grasp", one_turn_off, facts, env.tcp_pose())
    t, r = pose_error(goal, targets["grasp"])
    assert t < 1e-6 and r < 1e-6, (t, np.degrees(r))
    env.close()


@pytest.mark.slow
def test_the_procedural_splits_sampled_pegs_are_perceived_and_evaluated(goal_run, tmp_path):
    """`--split procedural`'s test side holds sampled members (not FMB's sizes) on one-hole boards:
    perception finds their hole, and `fmb eval` runs them end to end."""
    from sim.objects import PROCEDURAL_MEMBERS, peg_spec
    from sim.perceived_goals import goal_estimator, perceive_goals

    pool = ObjectPool.of_split("procedural", "test")
    assert len(pool.pegs) == 9 * PROCEDURAL_MEMBERS and {s.size for s in pool.pegs} == {"custom"}
    assert all(peg_spec(s.part_name) == s for s in pool.pegs)  # rebuilt from the name alone
    assert ObjectPool.of_split("procedural", "train").pegs == ObjectPool.fmb().pegs
    star = ObjectPool(tuple(s for s in pool.pegs if s.shape.name == "star")[:1])
    env = make_env("insert", objects=star)
    env.reset(seed=1)
    info = env.episode.info
    assert info["hole"] == "hole_target" and info["size"] == "custom"
    goals = perceive_goals(env, goal_estimator(info["peg"], SMALL), SMALL, np.random.default_rng(0), ("tcp_goal",))
    assert goals.failure == ""
    t, r = pose_error(goals.targets["tcp_goal"], info["targets"]["tcp_goal"])
    assert t < 0.005 and r < np.radians(3.0), (t, np.degrees(r))
    env.close()

    out = tmp_path / "procedural.json"
    args = ["eval", "--policy", str(goal_run), "--episodes", "1", "--split", "procedural", "--families", "star"]
    assert main([*args, "--json", str(out), "--quiet"]) == 0
    (row,) = json.loads(out.read_text())["episodes"]
    assert row["perception_failure"] == "" and row["peg"].startswith("peg_star_s0_")
    assert row["perception"]["hole"]["translation_mm"] < 10.0
