"""Object poses from a point cloud by registering the known CAD models, without ROS.

    models = scene_models("peg_star_M_long")              # the peg, its board, the target hole
    estimator = PoseEstimator(models, PerceptionConfig())
    estimate = estimator.estimate(points)                 # points: (N, 3) or (N, 6) [m], base frame
    estimate.poses["board"], estimate.poses["peg"]        # (7,) [m, xyzw]; estimate.holes: (9, 7)
    estimate = estimator.track(next_points, estimate)     # next frame, from the last poses (~10 ms)

Pipeline: crop the cloud to a workspace box and drop the table (points within `table_margin` of
`table_z`), downsample to `voxel`, split into clusters (DBSCAN), then for each object register its
model cloud (points sampled on the same CAD mesh the simulator renders, `cad.Part.mesh`) onto the
clusters whose size fits it. Registration starts from a few initial poses (`sim.perception.hypotheses`):
- `upright` objects (the board, flat on the table): yaw and centre from the minimum-area rectangle
  of the cluster's footprint (a square board: its four 90 deg turns, those within `board_yaw_range`
  of `board_yaw` kept; the prior picks which way its holes face); ICP turns it about z and moves
  it in x, y only;
- `free` objects (a peg, standing or lying): the model's axis along the cluster's principal axis,
  both ways, turned about it in `axis_turns` steps (plus, if `ransac_iterations`, one global
  registration with FPFH features + RANSAC);
each refined by point-to-plane ICP (`sim.perception.icp`: model KD-trees built once), coarse on the
downsampled cluster, fine on up to `fine_points` of the raw points. The score is the fraction of
cluster points within `icp_distances[-1]` of the model (fitness), ties broken by the inlier RMSE.

A prism peg's two ends differ only by its 1 mm tip chamfer (`sim.perception.ends`): a standing peg
stands on its tip (`standing_tip_down`, FMB's standing pegs), its top face where its highest
points are (a peg in the fixture's pocket shows little more than that face and the walls above
it); a lying one is turned end for end when the raw points at its ends fit the other way round
better (`end_cue`).

Objects are looked for largest first; what of a cluster a found object does not explain (farther
than `explain_margin` from it) is clustered again for the smaller ones, and an upright object's
cluster is cut at its height first (a peg standing in the fixture's pocket touches the fixture:
one cluster). A free object seen in pieces is refined on all the pieces near it (`_gather`).
Hole poses follow from the board pose and the board's CAD hole frames. `track` refines the last
poses on the points near them.

open3d (clustering, optional RANSAC) is imported on first use (`pip install -e .[perception]`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import numpy as np

from fmb_core.errors import ParameterError, check_range
from sim.exceptions import PerceptionError
from sim.perception.ends import choose_end
from sim.perception.hypotheses import axis_up, board_hypotheses, free_hypotheses
from sim.perception.icp import IcpTarget, evaluate, icp
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
        icp_distances: ICP correspondence distances, coarse to fine [m]; the last two are the fine
            stages (on raw points), the last one scores.
        icp_iterations: ICP iterations per distance, at most.
        hypothesis_iterations: ICP iterations of every initial pose before they are ranked.
        board_yaw, board_yaw_range: prior of the board's yaw about z and its half-width [rad].
        yaw_step: spacing of extra board yaw hypotheses around the footprint's [rad] (used only when
            no footprint turn lies within the prior).
        axis_turns: turns about a free object's principal axis tried per direction.
        ransac_iterations: iterations of the global registration of free objects (0 = none).
        refine: best coarse hypotheses refined at the fine ICP distances.
        coarse_points: points (at most) of a cluster used by the coarse stages.
        fine_points: raw points (at most) of a cluster used by the fine stages.
        standing_tip_down: a free object standing upright stands on its tip (FMB's standing pegs):
            an estimate with the base down is turned end for end.
        end_cue: a lying free object is turned end for end when its end points fit better so
            (the tip chamfer; `sim.perception.ends`).
        explain_margin: points farther than this from a found object's surface are not its: they
            are clustered again and offered to the smaller objects (a peg standing in the
            fixture); an upright object's cluster is cut this far above its top face [m].
        track_margin: `track` keeps the points within the model's bounding sphere plus this [m].
        track_iterations: ICP iterations per fine distance of a tracking update.
        track_points: points (at most) per object a tracking update registers.
        min_fitness: an estimate below this fraction of inliers is reported as not found.
        seed: seed of RANSAC, of the model sampling and of the raw-point subsampling.
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
    icp_iterations: int = 10
    hypothesis_iterations: int = 5
    board_yaw: float = 0.0
    board_yaw_range: float = np.radians(40.0)
    yaw_step: float = np.radians(10.0)
    axis_turns: int = 8
    ransac_iterations: int = 0
    refine: int = 2
    coarse_points: int = 400
    fine_points: int = 2000
    standing_tip_down: bool = True
    end_cue: bool = True
    explain_margin: float = 0.006
    track_margin: float = 0.01
    track_iterations: int = 3
    track_points: int = 800
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
        check_range("icp_iterations", self.icp_iterations, 1, 200)
        check_range("hypothesis_iterations", self.hypothesis_iterations, 1, 200)
        check_range("board_yaw_range", self.board_yaw_range, 0.0, np.pi, unit="rad")
        check_range("yaw_step", self.yaw_step, np.radians(1.0), np.pi, unit="rad")
        check_range("axis_turns", self.axis_turns, 1, 72)
        check_range("ransac_iterations", self.ransac_iterations, 0, 1_000_000)
        check_range("refine", self.refine, 1, 100)
        check_range("coarse_points", self.coarse_points, 50, 1_000_000)
        check_range("fine_points", self.fine_points, 100, 1_000_000)
        check_range("explain_margin", self.explain_margin, 0.001, 0.05, unit="m")
        check_range("track_margin", self.track_margin, 0.0, 0.2, unit="m")
        check_range("track_iterations", self.track_iterations, 1, 200)
        check_range("track_points", self.track_points, 50, 1_000_000)
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
        clusters: clusters found after cropping and table removal (0 for a tracking update).
        frames: "<object>/<frame>" -> (7,) pose [m, xyzw] in the base frame of every named frame
            of every object found (e.g. "fixture/pocket", "board/hole_star").
    """

    objects: dict[str, ObjectEstimate]
    holes: dict[str, np.ndarray]
    target_hole: np.ndarray | None
    seconds: float
    clusters: int
    frames: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def poses(self) -> dict[str, np.ndarray]:
        """key -> (7,) pose of every object found."""
        return {k: e.pose for k, e in self.objects.items() if e.pose is not None}


class _Target(NamedTuple):
    full: IcpTarget  # every model point
    down: IcpTarget  # one point per voxel
    radius: float  # bounding sphere radius about the box centre [m]
    centre: np.ndarray  # (3,) box centre, part frame [m]


class PoseEstimator:
    """Finds `models` in point clouds; see module docstring. Reuse it across clouds (model trees
    are built once)."""

    def __init__(self, models: list[ObjectModel], config: PerceptionConfig = PerceptionConfig()):
        self._o3d = open3d()
        self.models = list(models)
        self.config = config
        self._targets: dict[str, _Target] = {}
        for m in self.models:
            keys = np.floor(m.points / config.voxel).astype(np.int64)
            _, first = np.unique(keys, axis=0, return_index=True)
            low, high = m.points.min(0), m.points.max(0)
            self._targets[m.key] = _Target(
                IcpTarget(m.points, m.normals),
                IcpTarget(m.points[first], m.normals[first]),
                float(0.5 * np.linalg.norm(high - low)),
                0.5 * (low + high),
            )

    def estimate(self, points) -> SceneEstimate:
        """Poses of the models in `points` (N, >=3) [m] (xyz in the base frame; more columns ignored)."""
        start = time.perf_counter()
        raw = self._cropped(points)
        segments = self._segments(raw)
        clusters = len(segments)
        objects: dict[str, ObjectEstimate] = {}
        # Larger objects first: the board's cluster is not offered to the peg, only what of it the
        # board does not explain (a peg standing in the fixture's pocket, touching it).
        for m in sorted(self.models, key=lambda m: -float(np.prod(m.extent))):
            best, best_index = ObjectEstimate(None, 0.0, float("nan"), 0), None
            best_score = (-1.0, 0.0)
            for i, segment in enumerate(segments):
                if best_score[0] > 0 and best_score[1] >= len(segment[0]):
                    break  # sorted by size: no smaller cluster can score more (fitness <= 1)
                cluster, near = self._within_height(m, segment)
                if not self._fits(m, cluster):
                    continue
                T, fitness, rmse = self._register(m, cluster, near)
                # The cluster the model explains most points of (a few stray points fit anywhere).
                score = (float(fitness >= self.config.min_fitness), fitness * len(cluster))
                if score > best_score:
                    best_score = score
                    best, best_index = ObjectEstimate(matrix_to_pose(T), fitness, rmse, len(cluster)), i
            if best.pose is not None and best.fitness < self.config.min_fitness:
                best = best._replace(pose=None)
            if best.pose is not None:
                taken = [segments.pop(best_index)]
                if m.prior == "free":
                    best, pieces = self._gather(m, best, taken[0], segments)
                    taken += [segments[i] for i in pieces]
                    segments = [s for i, s in enumerate(segments) if i not in pieces]
                rest = [piece for _, raw in taken for piece in self._unexplained(m, best.pose, raw)]
                segments = sorted(segments + rest, key=lambda s: len(s[0]), reverse=True)
            objects[m.key] = best
        return self._scene(objects, start, clusters)

    def track(self, points, previous: SceneEstimate) -> SceneEstimate:
        """Poses in `points` (N, >=3) [m] refined from `previous` (an estimate of a moment ago):
        for each object found there, ICP from its last pose on the raw points within its bounding
        sphere (plus `track_margin`), `track_iterations` per fine distance. Objects `previous`
        lacks, or that no longer fit, are looked for again with `estimate`."""
        start = time.perf_counter()
        c = self.config
        xyz = np.asarray(points, float)
        if xyz.ndim != 2 or xyz.shape[1] < 3:
            raise PerceptionError(f"points must be (N, 3+) [m], got shape {xyz.shape}")
        xyz = xyz[:, :3]
        objects: dict[str, ObjectEstimate] = {}
        for m in self.models:
            last = previous.objects.get(m.key)
            if last is None or last.pose is None:
                return self.estimate(points)
            target = self._targets[m.key]
            T_base_part = pose_to_matrix(last.pose)
            centre = T_base_part[:3, :3] @ target.centre + T_base_part[:3, 3]
            near = xyz[np.sum((xyz - centre) ** 2, axis=1) < (target.radius + c.track_margin) ** 2]
            near = near[near[:, 2] > c.table_z + c.table_margin]  # NaN rows fail both tests
            near = self._subsample(near, n=c.track_points)
            if len(near) < c.cluster_min_points:
                return self.estimate(points)
            T, fit = icp(
                target.full, near, np.linalg.inv(T_base_part), c.icp_distances[-2:], c.track_iterations,
                planar=m.prior == "upright",
            )  # fmt: skip
            if fit.fitness < c.min_fitness:
                return self.estimate(points)
            objects[m.key] = ObjectEstimate(matrix_to_pose(np.linalg.inv(T)), fit.fitness, fit.rmse, len(near))
        return self._scene(objects, start, 0)

    def in_hand(self, points, tcp_pose, gripper_width: float, key: str = "peg", views=None):
        """The held model `key`'s pose in the TCP frame (`sim.perception.in_hand.estimate_in_hand`,
        with the cameras' depth `views` the cloud was fused from where there are):
        a HeldEstimate with `pose` (7,) T_tcp_peg [m, xyzw] or None."""
        from sim.perception.in_hand import estimate_in_hand

        return estimate_in_hand(self, points, tcp_pose, gripper_width, key, views=views)

    # -- steps -----------------------------------------------------------------------------------
    def clusters(self, points) -> list[np.ndarray]:
        """(K_i, 3) point clusters [m] of the cropped, table-free, downsampled cloud, largest first."""
        return [cluster for cluster, _ in self._segments(self._cropped(points))]

    def register(self, model: ObjectModel, cluster: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(T_base_part (4, 4), fitness, inlier RMSE [m]) of `model` on `cluster` (K, 3) [m]."""
        return self._register(model, cluster, cluster)

    def _cropped(self, points) -> np.ndarray:
        c = self.config
        xyz = np.asarray(points, float)
        if xyz.ndim != 2 or xyz.shape[1] < 3:
            raise PerceptionError(f"points must be (N, 3+) [m], got shape {xyz.shape}")
        xyz = xyz[:, :3]
        keep = np.all(np.isfinite(xyz), axis=1)
        keep &= np.all((xyz >= c.crop_low) & (xyz <= c.crop_high), axis=1)
        keep &= xyz[:, 2] > c.table_z + c.table_margin
        return xyz[keep]

    def _segments(self, raw: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(downsampled cluster, its raw points) pairs, largest first."""
        o3d, c = self._o3d, self.config
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(raw))
        cloud, _, members = (
            cloud.voxel_down_sample_and_trace(c.voxel, raw.min(0) - 1, raw.max(0) + 1)
            if len(raw)
            else (cloud, None, [])
        )
        if len(cloud.points) < c.cluster_min_points:
            return []
        labels = np.asarray(cloud.cluster_dbscan(c.cluster_eps, c.cluster_min_points))
        pts = np.asarray(cloud.points)
        raw_labels = np.full(len(raw), -1)
        for k, idx in enumerate(members):
            raw_labels[np.asarray(idx)] = labels[k]
        found = [(pts[labels == k], raw[raw_labels == k]) for k in range(labels.max() + 1)]
        return sorted(found, key=lambda s: len(s[0]), reverse=True)

    def _within_height(self, model: ObjectModel, segment) -> tuple[np.ndarray, np.ndarray]:
        """(cluster, raw points) of `segment` that can belong to `model`: for an upright object
        (flat on the table) those at most `explain_margin` above its top face, so that what stands
        in or on it (a peg in the fixture's pocket) does not hide it, and none when that is less
        than half the cluster (a tall thing standing on the table is not a board); a free
        object's, all."""
        cluster, near = segment
        if model.prior != "upright":
            return cluster, near
        top = self.config.table_z + float(model.extent[2]) + self.config.explain_margin
        low = cluster[:, 2] <= top
        if 2 * low.sum() < len(cluster):
            return cluster[:0], near[:0]
        return cluster[low], near[near[:, 2] <= top]

    def _gather(self, model: ObjectModel, found: ObjectEstimate, segment, others) -> tuple[ObjectEstimate, set[int]]:
        """A free object seen in pieces (a peg standing in the fixture, split by the pocket's rim):
        `found` (registered on `segment`) refined on its raw points and those of the `others`
        with points within its bounding sphere, kept when it then explains more points. Returns
        (the estimate, indices of the `others` it took)."""
        c, target = self.config, self._targets[model.key]
        T_base_part = pose_to_matrix(found.pose)
        centre = T_base_part[:3, :3] @ target.centre + T_base_part[:3, 3]
        radius2 = (target.radius + c.explain_margin) ** 2
        pieces = {i for i, (_, raw) in enumerate(others) if np.any(np.sum((raw - centre) ** 2, axis=1) < radius2)}
        if not pieces:
            return found, set()
        raw = self._subsample(np.concatenate([segment[1], *(others[i][1] for i in pieces)]))
        T = np.linalg.inv(T_base_part)
        before = evaluate(target.full, raw, T, c.icp_distances[-1])
        T, fit = icp(target.full, raw, T, c.icp_distances[-2:], c.icp_iterations)
        T, fit = self._ends(model, raw, T, fit)
        if fit.fitness <= before.fitness or fit.fitness < c.min_fitness:
            return found, set()
        points = found.points + sum(len(others[i][0]) for i in pieces)
        return ObjectEstimate(matrix_to_pose(np.linalg.inv(T)), float(fit.fitness), float(fit.rmse), points), pieces

    def _unexplained(self, model: ObjectModel, pose, raw: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Segments (as `_segments`) of the raw points of a cluster that `model`, found at `pose`
        (7,), does not explain: those farther than `explain_margin` from its surface, clustered
        again (a peg in the fixture's pocket)."""
        target = self._targets[model.key].full
        T_part_base = np.linalg.inv(pose_to_matrix(pose))
        moved = raw @ T_part_base[:3, :3].T + T_part_base[:3, 3]
        distance, _ = target.tree.query(moved, distance_upper_bound=self.config.explain_margin)
        rest = raw[~np.isfinite(distance)]
        if len(rest) < self.config.cluster_min_points:
            return []
        return self._segments(rest)

    def _subsample(self, points: np.ndarray, n: int | None = None) -> np.ndarray:
        """At most `n` (default `fine_points`) of `points`, drawn at random (seeded)."""
        n = self.config.fine_points if n is None else n
        if len(points) <= n:
            return points
        rng = np.random.default_rng(self.config.seed)
        return points[rng.choice(len(points), n, replace=False)]

    def _fits(self, model: ObjectModel, cluster: np.ndarray) -> bool:
        """Whether a cluster's size can be (part of) the object: its diameter at most the model's
        box diagonal plus 20 mm, and at least a quarter of the model's largest side (an upright
        object's cluster is first cut to its height, `_within_height`)."""
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

    def _register(self, model: ObjectModel, cluster: np.ndarray, near: np.ndarray):
        c = self.config
        target = self._targets[model.key]
        planar = model.prior == "upright"
        if planar:
            inits = board_hypotheses(model, cluster, c.table_z, c.board_yaw, c.board_yaw_range, c.yaw_step)
        else:
            inits = free_hypotheses(model, cluster, c.axis_turns)
            if c.ransac_iterations:
                inits.append(self._ransac(model, cluster))
        coarse = c.icp_distances[:-2] or c.icp_distances[:1]
        fine = c.icp_distances[-2:]
        # Coarse: every hypothesis at the first distance on a few points, the best few onwards.
        few = self._subsample(cluster, n=c.coarse_points)
        ranked = []
        for T_base_part in inits:
            T, _ = icp(target.down, few, np.linalg.inv(T_base_part), coarse[:1], c.hypothesis_iterations, planar)
            fit = evaluate(target.down, few, T, coarse[-1])  # ranked at the tighter distance
            ranked.append(((fit.fitness, -fit.rmse), T))
        ranked.sort(key=lambda r: r[0], reverse=True)
        if len(coarse) > 1:
            best_few = [T for _, T in ranked[: c.refine]]
            ranked = [(None, icp(target.down, few, T, coarse[1:], c.icp_iterations, planar)[0]) for T in best_few]
        raw = self._subsample(near)
        best = None
        for _, T in ranked[: c.refine]:
            T, fit = icp(target.full, raw, T, fine, c.icp_iterations, planar)
            if model.prior == "free":
                T, fit = self._ends(model, raw, T, fit)
            score = (fit.fitness, -fit.rmse)
            if best is None or score > best[0]:
                best = (score, T, fit)
        _, T, fit = best
        return np.linalg.inv(T), float(fit.fitness), float(fit.rmse)

    def _ends(self, model: ObjectModel, raw: np.ndarray, T: np.ndarray, fit):
        """Which way round a free prism is (see module docstring); T maps base -> part."""
        c = self.config
        L = float(model.points[:, 2].max() + model.points[:, 2].min())
        T_base_part = np.linalg.inv(T)
        if c.standing_tip_down and abs(T_base_part[2, 2]) > 0.5:
            if axis_up(T_base_part):  # base down: turn it end for end
                candidates = [icp(self._targets[model.key].full, raw, F @ T, c.icp_distances[-1:], c.icp_iterations)
                              for F in end_flips(L)]  # fmt: skip
                T, fit = max(candidates, key=lambda r: (r[1].fitness, -r[1].rmse))
            return self._top_face(model, raw, T, fit)
        if not c.end_cue:
            return T, fit
        target = self._targets[model.key].full
        flipped = [icp(target, raw, F @ T, c.icp_distances[-1:], c.icp_iterations) for F in end_flips(L)]
        candidates = [(T, fit), *flipped]
        return choose_end(target, raw, candidates, L, c.icp_distances[-1])

    def _top_face(self, model: ObjectModel, raw: np.ndarray, T: np.ndarray, fit):
        """A standing prism seen mostly from its walls (a peg in the fixture's pocket, its lower
        part hidden) can slide along its axis under ICP; its top face (the base, part z = 0, tip
        down) is the highest of its points. The pose moved along the axis to put the base there,
        refined, is kept when it fits better. T maps base -> part."""
        c = self.config
        moved = raw @ T[:3, :3].T + T[:3, 3]
        shift = float(np.percentile(moved[:, 2], 1.0))  # part z runs base -> tip, downwards
        if abs(shift) < c.icp_distances[-1]:
            return T, fit
        S = np.eye(4)
        S[2, 3] = -shift
        snapped = icp(self._targets[model.key].full, raw, S @ T, c.icp_distances[-1:], c.icp_iterations)
        return max([(T, fit), snapped], key=lambda r: (r[1].fitness, -r[1].rmse))

    def _ransac(self, model: ObjectModel, cluster: np.ndarray) -> np.ndarray:
        """T_base_part from FPFH features + RANSAC (open3d)."""
        o3d, c = self._o3d, self.config
        reg = o3d.pipelines.registration
        param = o3d.geometry.KDTreeSearchParamHybrid
        down = self._targets[model.key].down
        clouds = []
        for pts, normals in ((cluster, None), (down.points, down.normals)):
            cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
            if normals is None:
                cloud.estimate_normals(param(radius=4 * c.voxel, max_nn=30))
            else:
                cloud.normals = o3d.utility.Vector3dVector(normals)
            clouds.append((cloud, reg.compute_fpfh_feature(cloud, param(radius=10 * c.voxel, max_nn=100))))
        (scene, sf), (part, pf) = clouds
        result = reg.registration_ransac_based_on_feature_matching(
            scene, part, sf, pf, True, 3 * c.voxel, reg.TransformationEstimationPointToPoint(False), 3,
            [reg.CorrespondenceCheckerBasedOnDistance(3 * c.voxel)],
            reg.RANSACConvergenceCriteria(c.ransac_iterations, 0.999),
        )  # fmt: skip
        return np.linalg.inv(result.transformation)

    def _scene(self, objects: dict[str, ObjectEstimate], start: float, clusters: int) -> SceneEstimate:
        holes, frames, target = {}, {}, None
        for m in self.models:
            est = objects.get(m.key)
            if est is None or est.pose is None or not m.frames:
                continue
            T = pose_to_matrix(est.pose)
            for name, frame in m.frames.items():
                frames[f"{m.key}/{name}"] = matrix_to_pose(T @ pose_to_matrix(frame))
                if name.startswith("hole_"):
                    holes[name] = frames[f"{m.key}/{name}"]
            if m.target in holes:
                target = holes[m.target]
        return SceneEstimate(objects, holes, target, time.perf_counter() - start, clusters, frames)
