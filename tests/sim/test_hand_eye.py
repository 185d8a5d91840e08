"""Hand-eye refinement on rendered scenes: the cameras' calibration error, before and after."""

from __future__ import annotations

import numpy as np
import pytest

from fmb_core.errors import ParameterError
from sim.perception.hand_eye import HandEyeConfig, refine_camera, refine_views, table_centre
from sim.perception.models import pose_to_matrix
from sim.sensor import SENSORS, SensorModel


def _env(task: str, sensor: SensorModel):
    from sim.env import make_env

    return make_env(task, sensor=sensor)


def _table_error_mm(env, spec, camera_pose) -> float:
    """How far `camera_pose` puts the table centre from where `spec`'s true pose does [mm]."""
    p = np.r_[table_centre(env.config.workspace), 1.0]
    T = pose_to_matrix(camera_pose) @ np.linalg.inv(pose_to_matrix(env.backend.camera_pose(spec)))
    return float(np.linalg.norm((T @ p)[:3] - p[:3])) * 1e3


def _refined(env, seed: int, config=HandEyeConfig(), size: int = 256):
    env.reset(seed=seed)
    views = env.camera_views(("side_1", "side_2"), size, np.random.default_rng(seed))
    state = env.backend.robot_state()
    return views, refine_views(views, state.tcp_pose, state.gripper_width, config, table_centre(env.config.workspace))


@pytest.fixture(scope="module")
def noisy_insert():
    env = _env("insert", SENSORS["default"])
    yield env
    env.close()


def test_the_hand_corrects_each_cameras_calibration(noisy_insert):
    before, after = [], []
    for seed in range(3):
        views, (refined_views, fits) = _refined(noisy_insert, seed)
        assert [f.camera for f in fits] == ["side_1", "side_2"]
        for (spec, believed, *_), (_, used, *_), fit in zip(views, refined_views, fits):
            assert fit.applied, fit.reason
            assert np.allclose(used, fit.pose) and np.allclose(believed, fit.believed)
            before.append(_table_error_mm(noisy_insert, spec, believed))
            after.append(_table_error_mm(noisy_insert, spec, used))
    # 0.2 deg and 1 mm per camera put the table 1-3 mm off; the hand takes most of it away
    assert np.median(before) > 1.0
    assert np.median(after) < 0.3 * np.median(before)
    assert max(after) < 1.0


def test_an_exact_calibration_stays_exact():
    env = _env("insert", SENSORS["exact"])
    try:
        views, (_, fits) = _refined(env, 0)
        for (spec, *_), fit in zip(views, fits):
            assert fit.applied, fit.reason
            assert fit.rotation_deg < 0.05
            assert _table_error_mm(env, spec, fit.pose) < 0.2
    finally:
        env.close()


def test_an_unbelievable_correction_keeps_the_calibration(noisy_insert):
    strict = HandEyeConfig(max_rotation=0.0)
    views, (refined_views, fits) = _refined(noisy_insert, 0, strict)
    for (_, believed, *_), (_, used, *_), fit in zip(views, refined_views, fits):
        assert not fit.applied
        assert "max_rotation" in fit.reason
        assert np.array_equal(used, believed)


def test_a_hand_out_of_view_keeps_the_calibration(noisy_insert):
    noisy_insert.reset(seed=0)
    spec, believed, rgb, depth = noisy_insert.camera_views(("side_1",), 96)[0]
    far_away = np.r_[2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 1.0]  # the TCP where no camera point is
    from sim.pointcloud import camera_points

    fit = refine_camera("side_1", believed, camera_points(spec, believed, rgb, depth), far_away, 0.02)
    assert not fit.applied and fit.points == 0
    assert "fewer than min_points" in fit.reason
    assert np.array_equal(fit.pose, believed)


def test_off_and_wrist_cameras_are_left_alone(noisy_insert):
    noisy_insert.reset(seed=0)
    views = noisy_insert.camera_views(("side_1", "wrist"), 96)
    state = noisy_insert.backend.robot_state()
    same, fits = refine_views(views, state.tcp_pose, state.gripper_width, HandEyeConfig(enabled=False))
    assert fits == [] and all(a is b for a, b in zip(same, views))
    out, fits = refine_views(views, state.tcp_pose, state.gripper_width)
    assert [f.camera for f in fits] == ["side_1"]
    assert np.array_equal(out[1][1], views[1][1])  # the wrist camera's pose as it came


def test_the_env_fuses_its_cloud_with_refined_cameras():
    """`EnvConfig.hand_eye` (fmb_sim_robot's `hand_eye`): the published cloud's board sits where
    the refined cameras put it, closer to the truth than the calibrated ones."""
    from sim.env import make_env
    from sim.perception import PoseEstimator, scene_models
    from sim.perception.models import pose_error

    errors = {}
    for enabled in (False, True):
        env = make_env(
            "insert",
            cameras=("side_1", "side_2"),
            image_size=(192, 192),
            point_cloud=20_000,
            sensor=SENSORS["default"],
            hand_eye=HandEyeConfig(enabled=enabled),
        )
        obs, info = env.reset(seed=1)
        estimator = PoseEstimator(scene_models(info["episode"]["peg"]))
        board = estimator.estimate(obs["points"][:, :3].astype(float)).objects["board"].pose
        errors[enabled] = pose_error(board, info["object_poses"]["board"], (0.0,), (0.0, 0.0, 0.0))[0]
        env.close()
    assert errors[True] < 0.5 * errors[False]


def test_the_hand_model_opens_with_the_fingers():
    from sim.perception.hand_eye import HandModel

    def finger_span(model):  # across the fingers, below the hand's body
        y = model.points[model.points[:, 2] > -0.03, 1]
        return y.max() - y.min()

    narrow, wide = HandModel(0.01, points=4000), HandModel(0.07, points=4000)
    assert finger_span(wide) - finger_span(narrow) == pytest.approx(0.06, abs=0.004)
    assert narrow.low[2] < -0.15 and narrow.high[2] > -0.01  # from link7 to the fingertips at the TCP


@pytest.mark.parametrize(
    "field, value", [("meshes", "stl"), ("margin", -0.01), ("min_fitness", 1.5), ("distances", ()), ("max_shift", 1.0)]
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ParameterError, match=field):
        HandEyeConfig(**{field: value})
