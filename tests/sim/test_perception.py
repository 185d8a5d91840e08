"""Perception without ROS: registering the CAD models onto clouds the simulator renders."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("open3d", reason="perception needs open3d: pip install -e .[perception]")

from scipy.spatial.transform import Rotation  # noqa: E402

from fmb_core.errors import ParameterError  # noqa: E402
from sim.perception import (  # noqa: E402
    PerceptionConfig,
    PerceptionError,
    PoseEstimator,
    matrix_to_pose,
    pose_error,
    pose_to_matrix,
    scene_models,
)
from sim.tasks.geometry import symmetry_angles  # noqa: E402

TRANSLATION_TOL = 0.003  # [m]
ROTATION_TOL = np.radians(2.0)


@pytest.fixture(scope="module")
def scene():
    """A vertical-chain scene (peg standing on its tip beside its board) as the side cameras see it."""
    from sim.env import make_env

    env = make_env("vertical_chain", cameras=("side_1", "side_2"), image_size=(256, 256), point_cloud=40_000)
    obs, info = env.reset(seed=4)
    env.close()
    return obs["points"], info


def test_board_hole_and_peg_are_found_within_tolerance(scene):
    points, info = scene
    rng = np.random.default_rng(0)
    noisy = points[:, :3] + rng.normal(0.0, 0.001, (len(points), 3))  # 1 mm sensor noise
    models = scene_models(info["episode"]["peg"])
    estimate = PoseEstimator(models).estimate(noisy)
    truth = info["object_poses"]
    assert estimate.poses.keys() == {"board", "peg"}
    t, r = pose_error(estimate.poses["board"], truth["board"])
    assert t < TRANSLATION_TOL and r < ROTATION_TOL, (t, np.degrees(r))
    hole = matrix_to_pose(pose_to_matrix(truth["board"]) @ pose_to_matrix(models[0].frames[info["episode"]["hole"]]))
    t, r = pose_error(estimate.target_hole, hole)
    assert t < TRANSLATION_TOL and r < ROTATION_TOL, (t, np.degrees(r))
    assert len(estimate.holes) == 9  # FMB single-object board
    from sim.objects import ObjectPool

    spec = next(s for s in ObjectPool.fmb().pegs if s.part_name == info["episode"]["peg"])
    centroid = (*spec.section().centroid.coords[0], 0.5 * spec.length_m)
    t, r = pose_error(estimate.poses["peg"], truth["peg"], symmetry_angles(spec, 0.0005), centroid)
    assert t < TRANSLATION_TOL and r < ROTATION_TOL, (t, np.degrees(r))
    assert estimate.objects["board"].fitness > 0.9 and estimate.objects["peg"].fitness > 0.9


def test_a_wrong_model_is_not_reported_as_found(scene):
    """The scene's objects moved 30 cm away from the crop box: nothing is there to find."""
    points, info = scene
    estimate = PoseEstimator(scene_models(info["episode"]["peg"])).estimate(points[:, :3] + [0.0, 0.0, 0.5])
    assert estimate.poses == {} and estimate.target_hole is None and estimate.clusters == 0


def test_pose_error_respects_symmetries():
    truth = np.array([0.5, 0.0, 0.1, 0.0, 0.0, 0.0, 1.0])
    turned = np.array([0.5, 0.0, 0.1, 0.0, 0.0, np.sin(np.pi / 6), np.cos(np.pi / 6)])  # 60 deg about z
    assert pose_error(turned, truth)[1] == pytest.approx(np.pi / 3)
    assert pose_error(turned, truth, symmetries=np.radians([0, 60, 120]))[1] == pytest.approx(0.0, abs=1e-9)


def test_unknown_peg_and_bad_settings_are_named():
    with pytest.raises(PerceptionError, match="unknown peg 'peg_cube_XL'.*known: peg_arch"):
        scene_models("peg_cube_XL")
    with pytest.raises(ParameterError, match="voxel"):
        PerceptionConfig(voxel=0.5)
    with pytest.raises(ParameterError, match="crop_low"):
        PerceptionConfig(crop_low=(1.0, 0.0, 0.0), crop_high=(0.5, 1.0, 1.0))
    models = scene_models("peg_round_M_long")
    with pytest.raises(PerceptionError, match=r"points must be \(N, 3\+\)"):
        PoseEstimator(models).estimate(np.zeros((10, 2)))


def test_fmb_bench_perception_reports_errors_per_object(capsys):
    import json

    from fmb.cli import main

    assert main(["bench", "perception", "--scenes", "1", "--seed", "4", "--image-size", "128", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scenes"] == 1 and "per_scene" not in result
    for key in ("board", "hole", "peg", "peg_end_flip_ok"):
        assert result[key]["missed"] + result[key]["translation_mm"]["n"] == 1
    assert result["board"]["translation_mm"]["median"] < 3.0
    assert result["sensor"]["depth_noise"] > 0  # the D415-like model is on by default
    assert result["seconds_per_update"]["n"] == 1 and 0.0 <= result["end_flip_share"] <= 1.0
    assert result["in_hand"]["translation_mm"]["n"] == 0  # no held peg in a vertical chain's start
    assert result["hand_eye"] == "on" and result["hand_eye_views_refined"][1] == 2
    assert result["seconds_per_hand_eye"]["n"] == 1
    assert main(["bench", "perception", "--scenes", "1", "--seed", "4", "--hand-eye", "off", "--json"]) == 0
    off = json.loads(capsys.readouterr().out)
    assert off["hand_eye"] == "off" and off["hand_eye_views_refined"] == [0, 0]
    assert main(["bench", "perception", "--scenes", "0", "--json"]) == 2
    assert "scenes=0 is out of range" in capsys.readouterr().err
    # a regrasp start: the fixture and its pocket, the peg standing in it, no board
    assert main(["bench", "perception", "--task", "regrasp", "--scenes", "1", "--seed", "5", "--json"]) == 0
    regrasp = json.loads(capsys.readouterr().out)
    assert "board" not in regrasp and "tracked_board" not in regrasp
    assert regrasp["pocket"]["translation_mm"]["median"] < 1.0 and regrasp["peg"]["translation_mm"]["median"] < 3.0


def test_bench_perception_on_two_worker_processes_equals_the_serial_run_scene_for_scene(capsys):
    import json

    from fmb.cli import main

    argv = ["bench", "perception", "--scenes", "2", "--seed", "4", "--image-size", "128", "--points", "8000"]
    runs = []
    for workers in ("1", "2"):
        assert main([*argv, "--workers", workers, "--per-scene", "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    serial, parallel = runs
    assert serial["executor"] == "this process" and parallel["executor"] == "2 local worker processes"
    timed = ("seconds", "update_seconds")
    rows = [[{k: v for k, v in row.items() if k not in timed} for row in r["per_scene"]] for r in runs]
    assert [row["seed"] for row in rows[1]] == [4, 5] and rows[0] == rows[1]
    assert serial["peg"] == parallel["peg"] and serial["end_flips"] == parallel["end_flips"]


def _peg_truth(info):
    from sim.objects import ObjectPool

    spec = next(s for s in ObjectPool.fmb().pegs if s.part_name == info["episode"]["peg"])
    return spec, symmetry_angles(spec, 0.0005), (*spec.section().centroid.coords[0], 0.5 * spec.length_m)


def test_tracking_update_recovers_from_the_last_pose(scene):
    """A 4 mm / 2 deg stale estimate is refined back onto the objects by one tracking update."""
    points, info = scene
    estimator = PoseEstimator(scene_models(info["episode"]["peg"]))
    estimate = estimator.estimate(points)
    nudge = pose_to_matrix([0.004, -0.003, 0.0, *Rotation.from_euler("z", 2.0, degrees=True).as_quat()])
    stale = {k: e._replace(pose=matrix_to_pose(pose_to_matrix(e.pose) @ nudge)) for k, e in estimate.objects.items()}
    tracked = estimator.track(points, dataclasses.replace(estimate, objects=stale))
    assert tracked.clusters == 0  # a tracking update, not a new search
    truth = info["object_poses"]
    spec, symmetries, centroid = _peg_truth(info)
    t, r = pose_error(tracked.poses["board"], truth["board"])
    assert t < 0.001 and r < np.radians(0.5), (t, np.degrees(r))
    t, r = pose_error(tracked.poses["peg"], truth["peg"], symmetries, centroid)
    assert t < 0.001 and r < np.radians(0.5), (t, np.degrees(r))
    assert tracked.target_hole is not None


@pytest.mark.parametrize("seed", [0, 4, 6, 7, 9])
def test_end_cue_tells_a_lying_pegs_tip_from_its_base(seed):
    """At the cameras' default 256 px, 40k points and exact depth, the points at a lying peg's ends
    sit on its true way round better than on either end flip (each refined by ICP): fewer of them
    off the model by more than END_OUTLIER. Of seeds 0-9 it picks right in 9 (not seed 3); the
    mean squared residual (the cue before) in 5, and of these five seeds only in seed 0. Not
    reliable with the sensor model (the chamfer is below its noise; the bench's end_flip_share)."""
    from sim.env import make_env
    from sim.perception import end_flips
    from sim.perception.ends import choose_end
    from sim.perception.icp import icp

    env = make_env("horizontal_chain", cameras=("side_1", "side_2"), image_size=(256, 256), point_cloud=40_000)
    obs, info = env.reset(seed=seed)
    env.close()
    estimator = PoseEstimator(scene_models(info["episode"]["peg"]))
    target = estimator._targets["peg"].full
    length = float(estimator.models[1].points[:, 2].max())
    T_true = np.linalg.inv(pose_to_matrix(info["object_poses"]["peg"]))
    raw = estimator._cropped(obs["points"])
    near = raw[target.match(raw, T_true, 0.003)[3]]
    candidates = [icp(target, near, T, (0.005, 0.002), 20) for T in [T_true] + [F @ T_true for F in end_flips(length)]]
    chosen, _ = choose_end(target, near, candidates, length, 0.002)
    assert chosen is candidates[0][0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_held_peg_pose_in_the_tcp_frame(seed):
    """Insert starts (peg in the closed hand): the peg's pose in the TCP frame from the side
    cameras, hand and fingers removed, within 2 mm / 2 deg (exact depth)."""
    from sim.env import make_env

    env = make_env("insert", cameras=("side_1", "side_2"), image_size=(256, 256), point_cloud=40_000)
    obs, info = env.reset(seed=seed)
    T_tcp_base = np.linalg.inv(pose_to_matrix(env.tcp_pose()))
    env.close()
    estimator = PoseEstimator(scene_models(info["episode"]["peg"]))
    held = estimator.in_hand(obs["points"], obs["tcp_pose"].astype(float), float(obs["gripper"][0]))
    truth = matrix_to_pose(T_tcp_base @ pose_to_matrix(info["object_poses"]["peg"]))
    _, symmetries, centroid = _peg_truth(info)
    t, r = pose_error(held.pose, truth, symmetries, centroid)
    assert t < 0.002 and r < np.radians(2.0), (t * 1e3, np.degrees(r))


@pytest.mark.parametrize("seed", [100013, 100023])  # rectangle S, arch M
def test_a_held_peg_turned_wrong_in_the_hand_does_not_win_by_coarse_fitness(seed):
    """Two scenes of `fmb eval --goals perceived` (family_holdout, train side, the default sensor)
    where the in-hand estimate came out a quarter turn (rectangle) and 47 deg (arch) off: at the
    coarse correspondence distance those poses had nearly every point "within" (fitness 0.95-0.98
    at 3-5 mm RMSE), ahead of the right one (0.94 at 0.6 mm), so the right one was never refined.
    Ranked at the finest distance, it is found within 1 mm / 1 deg."""
    import copy

    from sim.env import make_env
    from sim.objects import ObjectPool
    from sim.perceived_goals import PerceivedGoalConfig, fused_cloud, goal_estimator, scene_views
    from sim.sensor import make_sensor

    config = PerceivedGoalConfig()
    pool = ObjectPool.of_split("family_holdout", "train")
    env = make_env("insert", objects=pool, sensor=make_sensor("default"), hand_eye=config.hand_eye)
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(int(copy.deepcopy(np.random.default_rng(seed)).integers(2**31)))  # as fmb eval
    views, _ = scene_views(env, config, rng)
    cloud = fused_cloud(env, config, views, rng)
    state = env.backend.robot_state()
    truth = matrix_to_pose(np.linalg.inv(pose_to_matrix(state.tcp_pose)) @ pose_to_matrix(env.object_pose("peg")))
    env.close()
    estimator = goal_estimator(info["episode"]["peg"], config)
    held = estimator.in_hand(cloud, state.tcp_pose, state.gripper_width, views=views)
    _, symmetries, centroid = _peg_truth(info)
    t, r = pose_error(held.pose, truth, symmetries, centroid)
    assert t < 0.001 and r < np.radians(1.0), (t * 1e3, np.degrees(r))


@pytest.mark.parametrize("seed", [0, 8])
def test_free_space_puts_the_held_pegs_tip_where_the_depth_edge_hid_it(seed):
    """Through the D415-like sensor (no returns a pixel or two each side of a depth edge) the
    lowest points seen on a held peg lie about 4 mm above its tip; sliding the peg until its tip
    would hide what the cameras see past it, and taking half of that, puts the tip back within
    1.5 mm along the axis."""
    from sim.env import make_env
    from sim.perceived_goals import PerceivedGoalConfig, fused_cloud, scene_views
    from sim.sensor import make_sensor

    env = make_env("insert", sensor=make_sensor("default"))
    _, info = env.reset(seed=seed)
    config = PerceivedGoalConfig()
    rng = np.random.default_rng(seed)
    views, _ = scene_views(env, config, rng)
    cloud = fused_cloud(env, config, views, rng)
    state = env.backend.robot_state()
    T_tcp_base = np.linalg.inv(pose_to_matrix(state.tcp_pose))
    true_held = T_tcp_base @ pose_to_matrix(env.object_pose("peg"))
    env.close()
    estimator = PoseEstimator(scene_models(info["episode"]["peg"]))
    axial = {}
    for name, with_views in (("free space", views), ("lowest seen", None)):
        held = estimator.in_hand(cloud, state.tcp_pose, state.gripper_width, views=with_views)
        axial[name] = float((pose_to_matrix(held.pose)[:3, 3] - true_held[:3, 3]) @ true_held[:3, 2])
        assert held.tip == ("free space" if with_views else "lowest seen (no depth views)")
    assert axial["lowest seen"] < -0.0025, axial  # the tip's band hidden by the edge
    assert abs(axial["free space"]) < 0.0015, axial


@pytest.mark.parametrize("seed", [1, 5, 7])  # arch, double square, star
def test_fixture_and_the_peg_standing_in_its_pocket(seed):
    """Regrasp starts (a peg standing tip-down in the fixture's pocket, hand up and away): the
    fixture, its pocket and the peg are found within tolerance, although the peg's visible part
    touches the fixture (one cluster; the peg is found in what the fixture does not explain).
    Not FMB's three-prong (seeds 0, 2): stretched to its measured box, it is 3-fold symmetric to
    the eye but not to 0.5 mm, and is registered a third of a turn off about its axis."""
    from sim.env import make_env

    env = make_env("regrasp", cameras=("side_1", "side_2"), image_size=(256, 256), point_cloud=40_000)
    obs, info = env.reset(seed=seed)
    env.close()
    models = scene_models(info["episode"]["peg"], fixture=True)
    estimate = PoseEstimator(models).estimate(obs["points"])
    truth = info["object_poses"]
    assert {"fixture", "peg"} <= estimate.poses.keys()
    t, r = pose_error(estimate.poses["fixture"], truth["fixture"], (0.0, np.pi))
    assert t < 0.001 and r < np.radians(0.5), (t * 1e3, np.degrees(r))
    pocket = matrix_to_pose(pose_to_matrix(truth["fixture"]) @ pose_to_matrix(models[2].frames["pocket"]))
    t, r = pose_error(estimate.frames["fixture/pocket"], pocket, (0.0, np.pi))
    assert t < 0.001 and r < np.radians(0.5), (t * 1e3, np.degrees(r))
    _, symmetries, centroid = _peg_truth(info)
    t, r = pose_error(estimate.poses["peg"], truth["peg"], symmetries, centroid)
    assert t < TRANSLATION_TOL and r < ROTATION_TOL, (t * 1e3, np.degrees(r))


def test_the_self_filter_removes_the_hand_and_keeps_the_peg_between_its_fingers():
    """Points inside the hand's and the open fingers' boxes at the measured TCP pose go; a peg
    between the fingers stays."""
    from sim.env import make_env
    from sim.perception import without_hand

    env = make_env("insert", cameras=("side_1", "side_2"), image_size=(256, 256), point_cloud=40_000)
    obs, info = env.reset(seed=1)
    tcp, width = obs["tcp_pose"].astype(float), float(obs["gripper"][0])
    env.close()
    kept = without_hand(obs["points"], tcp, width)
    assert 0 < len(kept) < len(obs["points"]) and kept.shape[1] == obs["points"].shape[1]
    estimator = PoseEstimator(scene_models(info["episode"]["peg"]))
    before = estimator.in_hand(obs["points"], tcp, width)
    after = estimator.in_hand(kept, tcp, width)  # the peg's points are all still there
    assert after.points == before.points
