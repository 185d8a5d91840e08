"""Perception without ROS: registering the CAD models onto clouds the simulator renders."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("open3d", reason="perception needs open3d: pip install -e .[perception]")

from fmb.errors import ParameterError  # noqa: E402
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
    assert main(["bench", "perception", "--scenes", "0", "--json"]) == 2
    assert "scenes=0 is out of range" in capsys.readouterr().err
