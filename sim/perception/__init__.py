"""Object poses from a point cloud by registering the known CAD models (open3d), without ROS.

    from sim.perception import PerceptionConfig, PoseEstimator, scene_models
    estimate = PoseEstimator(scene_models("peg_star_M_long"), PerceptionConfig()).estimate(points)

Modules: `models` (what perception knows before it looks: CAD model clouds, pose arithmetic),
`estimator` (crop, table removal, clusters, registration, `track` updates), `hypotheses` (initial
poses), `icp` (point-to-plane ICP on prebuilt KD-trees), `ends` (a lying peg's tip vs base),
`in_hand` (the held peg's pose in the TCP frame), `evaluate` (its pose error against the
simulator's ground truth, `fmb bench perception`). The ROS node `fmb_ros.perception_node` and
`fmb eval` both use it. open3d is imported on first use; numpy and scipy otherwise.
"""

from sim.exceptions import PerceptionError
from sim.perception.estimator import ObjectEstimate, PerceptionConfig, PoseEstimator, SceneEstimate
from sim.perception.in_hand import HandGeometry, HeldEstimate, estimate_in_hand, without_hand
from sim.perception.models import (
    ObjectModel,
    end_flips,
    matrix_to_pose,
    model_from_part,
    pose_error,
    pose_to_matrix,
    scene_models,
)

__all__ = [
    "HandGeometry",
    "HeldEstimate",
    "ObjectEstimate",
    "ObjectModel",
    "PerceptionConfig",
    "PerceptionError",
    "PoseEstimator",
    "SceneEstimate",
    "end_flips",
    "estimate_in_hand",
    "matrix_to_pose",
    "model_from_part",
    "pose_error",
    "pose_to_matrix",
    "scene_models",
    "without_hand",
]
