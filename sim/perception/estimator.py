"""Object poses from a point cloud by registering the known CAD models (open3d), without ROS.

    models = scene_models("peg_star_M_long")              # the peg, its board, the target hole
    estimator = PoseEstimator(models, PerceptionConfig())
    estimate = estimator.estimate(points)                 # points: (N, 3) or (N, 6) [m], base frame
    estimate.poses["board"], estimate.poses["peg"]        # (7,) [m, xyzw]; estimate.holes: (9, 7)

Pipeline: crop the cloud to a workspace box and drop the table (points within `table_margin` of
`table_z`), downsample to `voxel`, split into clusters (DBSCAN), then for each object register its
model cloud (points sampled on the same CAD mesh the simulator renders, `cad.Part.mesh`) onto the
clusters whose size fits it. Registration runs from several initial poses and keeps the best:
- `upright` objects (the board, lying flat on the table): the model's z axis up, its bottom on the
  table, its centre under the cluster's, turned by yaw hypotheses within `board_yaw_range` of
  `board_yaw` (a board's outline is square: the prior picks which way its holes face);
- `free` objects (a peg, standing or lying): the model's axis along the cluster's principal axis,
  both ways, turned about it in `axis_turns` steps, plus one global registration (FPFH features +
  RANSAC);
each refined by point-to-plane ICP (scene points onto the model surface, coarse to fine). The score
is the fraction of cluster points within `icp_distances[-1]` of the model (fitness), ties broken by
the inlier RMSE. Hole poses follow from the board pose and the board's CAD hole frames.

open3d is imported on first use (`pip install -e .[perception]`); everything else is numpy. The models
and pose arithmetic are in `sim.perception.models`; `sim.perception` exports both.
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from fmb.errors import ParameterError, check_range
from sim.exceptions import PerceptionError
from sim.perception.models import ObjectModel, end_flips, matrix_to_pose, pose_to_matrix


def open3d():
    """The open3d module, or a PerceptionError that says how to install it."""
    try:
        import open3d as o3d
    except ImportError as e:
        raise PerceptionError(
            f"perception needs open3d ({e}); install it with `pip install -e .[perception]` (the open3d-cpu wheel; "
            "Debian/Ubuntu also need `apt-get install libusb-1.0-0`)"
        ) from None
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)  # its warnings go to stdout
    return o3d


@dataclasses.dataclass(frozen=True)
class PerceptionConfig:
    """Perception settings (all in the base frame).

    Attributes:
        crop_low, crop_high: (3,) workspace box the cloud is cropped to [m] (the top stays below the hand).
        table_z: height of the table top [m]; table_margin: points below table_z + this are table [m].
        voxel: downsampling voxel [m].
        cluster_eps: DBSCAN neighbour distance [m]; cluster_min_points: smallest cluster [points].
        model_spacing: mean distance between the points sampled on each CAD mesh [m].
        icp_distances: ICP correspondence distances, coarse to fine [m]; the last one scores.
        board_yaw, board_yaw_range: prior of the board's yaw about z and its half-width [rad].
        yaw_step: spacing of the board's yaw hypotheses [rad].
        axis_turns: turns about a free object's principal axis tried per direction.
        ransac_iterations: iterations of the global registration of free objects (0 = none).
        refine: best coarse hypotheses refined at the fine ICP distances.
        standing_tip_down: a free object standing upright stands on its tip (FMB's standing pegs):
            its 1 mm tip chamfer is below the cloud's resolution, so its two ends look alike, and
            an estimate with the base down is turned end for end.
        min_fitness: an estimate below this fraction of inliers is reported as not found.
        seed: seed of RANSAC and of the model sampling.
    """

    crop_low: tuple[float, float, float] = (0.2, -0.6, -0.01)
    crop_high: tuple[float, float, float] = (0.9, 0.6, 0.2)
    table_z: float = 0.0
    table_margin: float = 0.004
    voxel: float = 0.004
    cluster_eps: float = 0.012
    cluster_min_points: int = 20
    model_spacing: float = 0.0015
    icp_distances: tuple[float, ...] = (0.03, 0.012, 0.005, 0.002)
    board_yaw: float = 0.0
    board_yaw_range: float = np.radians(40.0)
    yaw_step: float = np.radians(10.0)
    axis_turns: int = 8
    ransac_iterations: int = 4000
    refine: int = 3
    standing_tip_down: bool = True
    min_fitness: float = 0.5
    seed: int = 0

    def __post_init__(self):
        low, high = np.asarray(self.crop_low, float), np.asarray(self.crop_high, float)
        if low.shape != (3,) or high.shape != (3,) or not np.all(low < high):
            raise ParameterError(f"crop_low {list(self.crop_low)} must be below crop_high {list(self.crop_high)} [m]")
        check_range("table_margin", self.table_margin, 0.0, 0.05, unit="m")
        check_range("voxel", self.voxel, 0.0005, 0.05, unit="m")
        check_range("cluster_eps", self.cluster_eps, self.voxel, 0.1, unit="m")
        check_range("cluster_min_points", self.cluster_min_points, 1, 100_000)
        check_range("model_spacing", self.model_spacing, 0.0005, 0.02, unit="m")
        if not self.icp_distances or any(d <= 0 or d > 0.2 for d in self.icp_distances):
            raise ParameterError(f"icp_distances {list(self.icp_distances)} must be in (0, 0.2] m")
        check_range("board_yaw_range", self.board_yaw_range, 0.0, np.pi, unit="rad")
        check_range("yaw_step", self.yaw_step, np.radians(1.0), np.pi, unit="rad")
        check_range("axis_turns", self.axis_turns, 1, 72)
        check_range("ransac_iterations", self.ransac_iterations, 0, 1_000_000)
        check_range("refine", self.refine, 1, 100)
        check_range("min_fitness", self.min_fitness, 0.0, 1.0)


class ObjectEstimate(NamedTuple):
    """One object's estimate: `pose` (7,) [m, xyzw] in the base frame, or None when not found;
    `fitness` (0-1), inlier `rmse` [m], `points` in its cluster."""

    pose: np.ndarray | None
    fitness: float
    rmse: float
    points: int


@dataclasses.dataclass
class SceneEstimate:
    """Poses found in one cloud.

    Attributes:
        objects: key -> ObjectEstimate.
        holes: hole frame name -> (7,) pose [m, xyzw] in the base frame (when the board was found).
        target_hole: (7,) the board's target hole pose, or None.
        seconds: wall time of the estimate [s].
        clusters: clusters found after cropping and table removal.
    """

    objects: dict[str, ObjectEstimate]
    holes: dict[str, np.ndarray]
    target_hole: np.ndarray | None
    seconds: float
    clusters: int

    @property
    def poses(self) -> dict[str, np.ndarray]:
        """key -> (7,) pose of every object found."""
        return {k: e.pose for k, e in self.objects.items() if e.pose is not None}


class PoseEstimator:
    """Finds `models` in point clouds; see module docstring. Reuse it across clouds (model features
    are computed once)."""

    def __init__(self, models: list[ObjectModel], config: PerceptionConfig = PerceptionConfig()):
        o3d = self._o3d = open3d()
        self.models = list(models)
        self.config = config
        self._targets = {}
        for m in self.models:
            cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(m.points))
            cloud.normals = o3d.utility.Vector3dVector(m.normals)
            down = cloud.voxel_down_sample(config.voxel)
            feats = self._features(down)
            self._targets[m.key] = (cloud, down, feats)

    def estimate(self, points) -> SceneEstimate:
        """Poses of the models in `points` (N, >=3) [m] (xyz in the base frame; more columns ignored)."""
        start = time.perf_counter()
        clusters = self.clusters(points)
        objects: dict[str, ObjectEstimate] = {}
        taken: set[int] = set()
        # Larger objects first: the board's cluster is not offered to the peg.
        for m in sorted(self.models, key=lambda m: -float(np.prod(m.extent))):
            best, best_index = ObjectEstimate(None, 0.0, float("nan"), 0), None
            best_score = (-1.0, 0.0)
            for i, cluster in enumerate(clusters):
                if i in taken or not self._fits(m, cluster):
                    continue
                T, fitness, rmse = self.register(m, cluster)
                # The cluster the model explains most points of (a few stray points fit anywhere).
                score = (float(fitness >= self.config.min_fitness), fitness * len(cluster))
                if score > best_score:
                    best_score = score
                    best, best_index = ObjectEstimate(matrix_to_pose(T), fitness, rmse, len(cluster)), i
            if best.pose is not None and best.fitness < self.config.min_fitness:
                best = best._replace(pose=None)
            if best.pose is not None:
                taken.add(best_index)
            objects[m.key] = best
        holes, target = {}, None
        for m in self.models:
            pose = objects[m.key].pose
            if pose is None or not m.frames:
                continue
            T = pose_to_matrix(pose)
            for name, frame in m.frames.items():
                if name.startswith("hole_"):
                    holes[name] = matrix_to_pose(T @ pose_to_matrix(frame))
            if m.target in holes:
                target = holes[m.target]
        return SceneEstimate(objects, holes, target, time.perf_counter() - start, len(clusters))

    # -- steps -----------------------------------------------------------------------------------
    def clusters(self, points) -> list[np.ndarray]:
        """(K_i, 3) point clusters [m] of the cropped, table-free, downsampled cloud, largest first."""
        o3d, c = self._o3d, self.config
        xyz = np.asarray(points, float)
        if xyz.ndim != 2 or xyz.shape[1] < 3:
            raise PerceptionError(f"points must be (N, 3+) [m], got shape {xyz.shape}")
        xyz = xyz[:, :3]
        keep = np.all(np.isfinite(xyz), axis=1)
        keep &= np.all((xyz >= c.crop_low) & (xyz <= c.crop_high), axis=1)
        keep &= xyz[:, 2] > c.table_z + c.table_margin
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz[keep]))
        cloud = cloud.voxel_down_sample(c.voxel)
        if len(cloud.points) < c.cluster_min_points:
            return []
        labels = np.asarray(cloud.cluster_dbscan(c.cluster_eps, c.cluster_min_points))
        pts = np.asarray(cloud.points)
        found = [pts[labels == k] for k in range(labels.max() + 1)]
        return sorted(found, key=len, reverse=True)

    def _fits(self, model: ObjectModel, cluster: np.ndarray) -> bool:
        """Whether a cluster's size can be (part of) the object: its diameter at most the model's
        box diagonal plus 20 mm, and at least a quarter of the model's largest side."""
        from scipy.spatial import ConvexHull, QhullError
        from scipy.spatial.distance import pdist

        if len(cluster) < self.config.cluster_min_points:
            return False
        try:
            hull = cluster[ConvexHull(cluster).vertices]
        except QhullError:  # flat or degenerate: every point is a candidate
            hull = cluster
        diameter = float(pdist(hull).max()) if len(hull) > 1 else 0.0
        return 0.25 * float(model.extent.max()) <= diameter <= float(np.linalg.norm(model.extent)) + 0.02

    def register(self, model: ObjectModel, cluster: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(T_base_part (4, 4), fitness, inlier RMSE [m]): the best of the initial poses, refined."""
        o3d, c = self._o3d, self.config
        scene = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cluster))
        full, down, feats = self._targets[model.key]
        inits = self._initial_poses(model, cluster)
        if model.prior == "free" and c.ransac_iterations:
            scene.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=4 * c.voxel, max_nn=30))
            scene_feats = self._features(scene)
            result = o3d.pipelines.registration.registration_ransac_based_on_feature_matching(
                scene, down, scene_feats, feats, True, 3 * c.voxel,
                o3d.pipelines.registration.TransformationEstimationPointToPoint(False), 3,
                [o3d.pipelines.registration.CorrespondenceCheckerBasedOnDistance(3 * c.voxel)],
                o3d.pipelines.registration.RANSACConvergenceCriteria(c.ransac_iterations, 0.999),
            )  # fmt: skip
            inits.append(np.linalg.inv(result.transformation))
        coarse, fine = c.icp_distances[:-2] or c.icp_distances[:1], c.icp_distances[-2:]
        ranked = []
        for T_base_part in inits:
            T = self._icp(scene, down, np.linalg.inv(T_base_part), coarse)  # scene -> part
            ev = o3d.pipelines.registration.evaluate_registration(scene, down, coarse[-1], T)
            ranked.append(((ev.fitness, -ev.inlier_rmse), T))
        ranked.sort(key=lambda r: r[0], reverse=True)
        best = None
        for _, T in ranked[: c.refine]:
            candidates = [T]
            if model.prior == "free" and c.standing_tip_down:
                candidates = [self._icp(scene, full, T, fine)]
                if _axis_up(np.linalg.inv(candidates[0])):  # base down: turn it end for end (see module doc)
                    L = float(model.points[:, 2].max() + model.points[:, 2].min())
                    candidates = [T_flip @ candidates[0] for T_flip in end_flips(L)]
            for T in candidates:
                T = self._icp(scene, full, T, fine)
                if model.prior == "upright":
                    T = np.linalg.inv(_upright(np.linalg.inv(T), c.table_z))
                ev = o3d.pipelines.registration.evaluate_registration(scene, full, c.icp_distances[-1], T)
                score = (ev.fitness, -ev.inlier_rmse)
                if best is None or score > best[0]:
                    best = (score, T, ev.fitness, ev.inlier_rmse)
        return np.linalg.inv(best[1]), float(best[2]), float(best[3])

    def _icp(self, scene, target, T: np.ndarray, distances) -> np.ndarray:
        """Point-to-plane ICP of `scene` onto `target` from T (scene -> part), coarse to fine."""
        reg = self._o3d.pipelines.registration
        for d in distances:
            T = reg.registration_icp(
                scene,
                target,
                d,
                T,
                reg.TransformationEstimationPointToPlane(),
                reg.ICPConvergenceCriteria(max_iteration=30),
            ).transformation
        return T

    def _initial_poses(self, model: ObjectModel, cluster: np.ndarray) -> list[np.ndarray]:
        """T_base_part (4, 4) guesses from the prior (see module docstring)."""
        c = self.config
        centre = 0.5 * (cluster.min(0) + cluster.max(0))
        model_centre = 0.5 * (model.points.min(0) + model.points.max(0))
        inits = []
        if model.prior == "upright":
            n = max(1, int(round(2 * c.board_yaw_range / c.yaw_step)) + 1)
            for yaw in c.board_yaw + np.linspace(-c.board_yaw_range, c.board_yaw_range, n):
                R = Rotation.from_euler("z", yaw).as_matrix()
                T = np.eye(4)
                T[:3, :3] = R
                offset = R @ model_centre
                T[:3, 3] = [centre[0] - offset[0], centre[1] - offset[1], c.table_z - model.points[:, 2].min()]
                inits.append(T)
            return inits
        # Free: the model's longest box axis along the cluster's principal axis, both ways, turned.
        axes = np.linalg.svd(cluster - cluster.mean(0), full_matrices=False)[2]
        long_axis = int(np.argmax(model.extent))
        for sign in (1.0, -1.0):
            for turn in np.arange(c.axis_turns) * 2 * np.pi / c.axis_turns:
                frame = np.stack([axes[1], np.cross(sign * axes[0], axes[1]), sign * axes[0]], axis=1)
                R = frame @ Rotation.from_euler("z", turn).as_matrix()
                R = R @ _axis_to_z(long_axis)
                T = np.eye(4)
                T[:3, :3] = R
                T[:3, 3] = cluster.mean(0) - R @ model.points.mean(0)
                inits.append(T)
        return inits

    def _features(self, cloud):
        o3d, v = self._o3d, self.config.voxel
        if not cloud.has_normals():
            cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=4 * v, max_nn=30))
        return o3d.pipelines.registration.compute_fpfh_feature(
            cloud, o3d.geometry.KDTreeSearchParamHybrid(radius=10 * v, max_nn=100)
        )


def _axis_to_z(axis: int) -> np.ndarray:
    """(3, 3) rotation taking the part's box axis `axis` (0, 1, 2) onto z."""
    return {0: Rotation.from_euler("y", -90, degrees=True), 1: Rotation.from_euler("x", 90, degrees=True)}.get(
        axis, Rotation.identity()
    ).as_matrix()


def _axis_up(T_base_part: np.ndarray) -> bool:
    """Whether the part's z axis (a peg's base -> tip) points within 60 deg of straight up."""
    return bool(T_base_part[2, 2] > 0.5)


def _upright(T_base_part: np.ndarray, table_z: float) -> np.ndarray:
    """Project a pose onto "flat on the table": keep its yaw and xy, zero roll and pitch, z = table_z."""
    x = T_base_part[:3, 0]
    yaw = np.arctan2(x[1], x[0])
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("z", yaw).as_matrix()
    T[:3, 3] = [T_base_part[0, 3], T_base_part[1, 3], table_z]
    return T
