"""The environment on the MuJoCo backend: determinism, tracking, the insert task and its expert."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError
from sim import panda
from sim.env import make_env
from sim.exceptions import ActionError, UnknownNameError
from sim.experts import make_expert
from sim.objects import ObjectPool
from sim.rollout import run_episode
from sim.spatial import about, compose, pose, z_axis


@pytest.fixture(scope="module")
def env():
    e = make_env("insert", objects=ObjectPool.fmb(families=("round", "star", "double_square")), seed=0)
    yield e
    e.close()


def test_reset_is_deterministic(env):
    a, info_a = env.reset(seed=11)
    b, info_b = env.reset(seed=11)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert info_a["episode"] == info_b["episode"]
    c, _ = env.reset(seed=12)
    assert not np.array_equal(a["tcp_pose"], c["tcp_pose"])


def test_controller_tracks_a_pose_step(env):
    env.reset(seed=3)
    start = env.tcp_pose()
    target = start.copy()
    target[:3] += [0.05, 0.0, 0.03]
    errors = []
    for _ in range(15):  # 1.5 s at 10 Hz
        env.step_pose(target, close_gripper=True)
        errors.append(np.abs(env.tcp_pose()[:3] - target[:3]).max())
    assert errors[-1] < 0.002, errors  # within 2 mm after 1.5 s
    assert errors[3] < 0.02  # most of the way after 0.4 s (FMB's clipped gains limit the speed)


def test_insert_expert_succeeds(env):
    expert = make_expert("insert")
    results = [run_episode(env, expert, seed) for seed in range(5)]
    assert sum(r.success for r in results) >= 5, [(r.info["episode"]["peg"], r.info["metrics"]) for r in results]
    for r in results:
        m = r.info["metrics"]
        assert m["depth"] >= 0.020 and m["lateral"] <= 0.004 and r.info["progress"] == 1.0


def test_dart_records_the_experts_action_and_executes_a_noisy_one(env):
    """DART: the episode records the expert's own actions, the executed ones differ from them by
    the noise (not on the gripper), the insertion still succeeds, and the same seed gives the
    same demonstration."""
    dart = make_expert("insert", dart=1.0)
    executed = []

    class Spy:  # records what reaches the environment
        label = None

        def reset(self, e):
            dart.reset(e)

        def act(self, e):
            a = dart.act(e)
            self.label = dart.label
            executed.append(a.copy())
            return a

    dart.rng = np.random.default_rng(4)
    result = run_episode(env, Spy(), 4, record=True)
    assert result.success, result.info["metrics"]
    recorded = result.data["action"]
    executed = np.asarray(executed, np.float32)
    noise = executed[:, :3] - recorded[:, :3]
    assert 0.0002 < noise.std() < 0.001  # 0.5 mm per axis at scale 1
    np.testing.assert_array_equal(executed[:, 6], recorded[:, 6])  # the gripper command is not noised

    dart.rng = np.random.default_rng(4)
    again = run_episode(env, dart, 4, record=True)
    np.testing.assert_array_equal(again.data["action"], recorded)


@pytest.mark.slow
def test_delayed_actions_execute_the_experts_decisions_late_and_record_what_ran(env):
    """`--action-delay 2`: the first two steps hold still (gripper as first decided), then each
    step executes the expert's decision of two steps before, and a demonstration records those;
    the wrapped expert's seed still decides the episode. Out-of-range delays are refused by name."""
    expert = make_expert("insert", action_delay=2)
    decided = []
    inner_act = expert.controller.act
    expert.controller.act = lambda e: decided.append(np.asarray(inner_act(e), float)) or decided[-1]
    expert.rng = np.random.default_rng(1)
    assert expert.controller.rng is expert.rng and expert.task == "insert"
    result = run_episode(env, expert, 1, record=True)
    executed = result.data["action"]
    np.testing.assert_array_equal(executed[:2, :6], 0.0)
    assert (executed[:2, 6] == decided[0][6]).all()
    np.testing.assert_allclose(executed[2:], np.asarray(decided[: len(executed) - 2], np.float32), atol=1e-6)
    with pytest.raises(ParameterError, match="action_delay"):
        make_expert("insert", action_delay=101)


def test_multimodal_expert_inserts_at_several_turns():
    """`--expert-modes all`: the insertion expert draws one of the section's fitting turns per
    episode (a star has five) and still succeeds; the peg really ends at that turn. The default
    aims at the nearest turn (0 for the insert task's start). Experts with one way refuse "all"."""
    env = make_env("insert", objects=ObjectPool.fmb(families=("star",), sizes=("M",)), seed=0)
    try:
        turns = {}
        for modes in ("nearest", "all"):
            expert = make_expert("insert", modes=modes)
            turns[modes] = []
            for seed in range(6):
                expert.rng = np.random.default_rng(seed)
                result = run_episode(env, expert, seed)
                assert result.success, (modes, seed, result.info["metrics"])
                turn = expert.episode_report()["expert_turn_deg"]
                turns[modes].append(turn)
                # The peg ends turned by that angle from the task's goal, about the vertical.
                goal = np.asarray(env.episode.info["targets"]["peg_goal"])
                relative = Rotation.from_quat(env.object_pose("peg")[3:]) * Rotation.from_quat(goal[3:]).inv()
                yaw = np.degrees(relative.as_rotvec()[2])
                assert abs((yaw - turn + 180.0) % 360.0 - 180.0) < 5.0, (modes, seed, yaw, turn)
        assert set(turns["nearest"]) == {0.0}, turns
        assert len(set(turns["all"])) >= 3, turns  # of 0, 72, 144, 216, 288
    finally:
        env.close()
    with pytest.raises(ParameterError, match="grasp expert has no modes 'all'"):
        make_expert("grasp", modes="all")


def test_dart_demonstrations_touch_the_board_more_often(env):
    """The point of DART for insertion: noise-free demonstrations align above the hole and never
    press on the board, DART's touch the chamfer and show the expert pushing on to the goal."""

    def episodes_with_contact(dart: float) -> int:
        expert = make_expert("insert", dart=dart)
        count = 0
        for seed in range(8):
            expert.rng = np.random.default_rng(seed)
            result = run_episode(env, expert, seed, record=True)
            assert result.success, (dart, seed, result.info["metrics"])
            count += bool((result.data["obs/wrench"][:, 2] < -3.0).any())  # pressing on the board
        return count

    plain, dart = episodes_with_contact(0.0), episodes_with_contact(1.0)
    assert dart >= plain + 3, (plain, dart)  # measured: 1 and 5 of 8


def test_tcp_goal_is_where_the_expert_ends(env):
    """The `tcp_goal` target (the hand's pose with the held peg inserted at the fitting turn
    nearest its start) agrees with where the expert's TCP ends a successful insertion."""
    expert = make_expert("insert")
    for seed in (0, 1):  # a double-square (one fitting turn) and a star (60-degree turns)
        result = run_episode(env, expert, seed)
        assert result.success
        goal = np.asarray(env.episode.info["targets"]["tcp_goal"])
        tcp = env.tcp_pose()
        assert np.linalg.norm(goal[:3] - tcp[:3]) < 0.006  # the peg stops a few mm short of the bottom
        angle = (Rotation.from_quat(goal[3:]) * Rotation.from_quat(tcp[3:]).inv()).magnitude()
        assert angle < np.radians(1.0), (env.episode.info["family"], np.degrees(angle))


def test_success_check_does_not_fire_on_a_staged_failure(env):
    env.reset(seed=4)
    hole = np.asarray(env.episode.info["targets"]["hole"])
    tcp = env.tcp_pose()
    peg = env.object_pose("peg")
    # Push the peg down 15 mm beside the hole: it lands on the board's top face.
    target = tcp.copy()
    target[:3] += (hole[:3] - peg[:3]) * [1, 1, 0] + [0.03, 0.0, 0.0]
    for _ in range(10):
        env.step_pose(target, True)
    target[2] -= 0.15
    for _ in range(15):
        _, reward, terminated, _, info = env.step_pose(target, True)
    assert not info["success"] and reward == 0.0
    assert info["metrics"]["depth"] < 0.005
    assert info["progress"] < 0.9


def test_observation_layout_and_privileged_info(env):
    obs, info = env.reset(seed=1)
    assert set(obs) == {"tcp_pose", "tcp_vel", "wrench", "q", "dq", "gripper"}
    assert env.observation_space.contains(obs)
    assert set(info["object_poses"]) == {"board", "peg"}
    assert 0.0 < obs["gripper"][0] < 0.08  # holding the peg


def test_bad_actions(env):
    env.reset(seed=0)
    with pytest.raises(ActionError, match="shape"):
        env.step(np.zeros(6))
    with pytest.raises(ActionError, match="NaN"):
        env.step([0, 0, np.nan, 0, 0, 0, 1])
    with pytest.raises(ActionError):
        env.step_pose(pose([0.5, 0, np.inf]), True)


def test_step_limit_truncates_and_overrides_the_tasks():
    env = make_env("insert", max_steps=3)
    try:
        assert env.max_steps == 3 and env.task.max_steps == 100
        env.reset(seed=0)
        hold = np.zeros(7)
        truncated = [env.step(hold)[3] for _ in range(3)]
        assert truncated == [False, False, True]
    finally:
        env.close()
    with pytest.raises(ParameterError, match="max_steps"):
        make_env("insert", max_steps=-1)


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="known: .*insert"):
        make_env("juggle")
    with pytest.raises(UnknownNameError, match="mujoco, pybullet"):
        make_env("insert", backend="gazebo")
    with pytest.raises(UnknownNameError, match="side_1"):
        make_env("insert", cameras=("top",))


def test_cameras_and_point_cloud():
    e = make_env(
        "insert",
        objects=ObjectPool.fmb(families=("round",), sizes=("M",)),
        cameras=("side_1", "wrist"),
        image_size=(64, 48),
        point_cloud=512,
    )
    obs, info = e.reset(seed=0)
    assert obs["rgb/side_1"].shape == (48, 64, 3) and obs["rgb/side_1"].dtype == np.uint8
    assert obs["depth/wrist"].shape == (48, 64) and np.all(np.isfinite(obs["depth/wrist"]))
    assert obs["points"].shape == (512, 6)
    pts = obs["points"]
    assert np.all(pts[:, 2] > 0.0) and np.all(pts[:, 3:] >= 0) and np.all(pts[:, 3:] <= 1)
    # The board's top face (z = 50 mm) is in the cloud.
    assert np.any(np.abs(pts[:, 2] - 0.05) < 0.003)
    e.close()


def test_save_and_restore_state(env):
    """Restoring a snapshot and replaying an action reproduces the first outcome exactly."""
    env.reset(seed=2)
    saved = env.backend.save_state()
    action = [0.03, 0, -0.01, 0, 0, 0.05, 1]
    first, *_ = env.step(action)
    env.step([-0.03, 0.02, 0, 0, 0, 0, 1])
    env.backend.restore_state(saved)
    np.testing.assert_array_equal(env.backend.save_state(), saved)
    again, *_ = env.step(action)
    for key in first:
        np.testing.assert_allclose(again[key], first[key], atol=1e-9, err_msg=key)


def test_insert_check_takes_any_fitting_turn():
    # A 3-prong S fits its hole every 120 deg about its section's centroid, 4.2 mm off its frame
    # origin: fully in at a 120-deg turn, the origin's axis is 7 mm off the hole's, yet it is in.
    e = make_env("insert", objects=ObjectPool.fmb(families=("three_prong",), sizes=("S",)), seed=0)
    e.reset(seed=0)
    info = e.episode.info
    assert any(abs(a - 2 * np.pi / 3) < 0.05 for a in info["symmetries"])
    hole = np.asarray(info["targets"]["hole"])
    straight = np.asarray(info["targets"]["peg_goal"])  # 25 mm in, turn 0
    centroid_axis = compose(straight, pose(info["centroid"]))[:3]
    third = Rotation.from_rotvec(z_axis(hole[3:]) * 2 * np.pi / 3).as_quat()
    turned = about(centroid_axis, pose([0, 0, 0], third), straight)
    assert np.linalg.norm(turned[:3] - straight[:3]) > 0.006  # the frame origin moved off the axis
    for peg, ok in ((straight, True), (turned, True), (turned + np.r_[0.005, 0, 0, 0, 0, 0, 0], False)):
        e.backend.reset(panda.HOME_Q, panda.GRIPPER_OPEN, {**e.episode.object_poses, "peg": peg})
        assert bool(e.task.evaluate(e, e.episode).success) == ok
    e.close()


def test_demonstrations_record_the_actions_the_arm_executed():
    """A scripted expert may ask for more than one action moves (the grasp expert asks for the
    whole turn of the hand to its grasp at once): the demonstration records each delta component
    clipped to the action limits, as the arm executed it, so that a policy learns commands it can
    run; the gripper channel as given."""
    from sim.limits import DEFAULT_ACTION_LIMITS

    env = make_env("grasp", objects=ObjectPool.fmb(families=("rectangle",)), seed=0)
    try:
        expert = make_expert("grasp")
        asked = []
        act = expert.act
        expert.act = lambda e: asked.append(np.asarray(act(e), float)) or asked[-1]
        for seed in range(4):
            expert.rng = np.random.default_rng(seed)
            asked.clear()
            result = run_episode(env, expert, seed, record=True)
            recorded, asked_ = result.data["action"], np.asarray(asked)
            limits = DEFAULT_ACTION_LIMITS.high()
            assert np.all(np.abs(recorded[:, :6]) <= limits + 1e-6)
            np.testing.assert_allclose(recorded[:, :6], np.clip(asked_[:, :6], -limits, limits), atol=1e-6)
            np.testing.assert_array_equal(recorded[:, 6], asked_[:, 6].astype(np.float32))
            if (np.abs(asked_[:, 3:6]) > limits[3:] + 1e-6).any():
                break
        else:
            pytest.fail("no episode asked for more than one action turns; the test shows nothing")
    finally:
        env.close()
