"""Hand-eye refinement: correct each camera's calibration by finding the robot's hand in its cloud.

    config = HandEyeConfig()
    views, fits = refine_views(views, tcp_pose, gripper_width, config, check_point)
    fits[0].applied, fits[0].shift_mm      # corrected? how far that moved the workspace centre

A camera's extrinsic calibration is off by a residual (`sim.sensor`'s default: 1 mm and 0.2 deg,
a hand-eye calibration's usual error), which at the board's 0.6 m from the side cameras puts
every registered object 1-3 mm off: more than an FMB peg's clearance. The robot knows exactly
where its own hand is (the measured TCP pose from the joint encoders and the kinematics, the
finger opening from the gripper), so the hand seen by a camera is a calibration target that is in
view at every skill start. For each camera fixed in the world:

1. its points (back-projected from its depth image at its believed pose) inside the hand's box,
   grown by `margin`, are taken (`HandModel`: the wrist's last link, the hand and both fingers,
   sampled on the Panda description's meshes at the measured opening, in the TCP frame);
2. point-to-plane ICP (`sim.perception.icp`) registers them on the hand model placed at the
   measured TCP pose, together with (`table`) the camera's points on the table, registered on
   its plane, which pins the camera's tilt and height where the hand is small in the image; the
   registration's transform C maps believed base-frame points to where the hand and the table
   say they are, and the camera's refined pose is C composed with its believed one;
3. the correction is kept only where it is trustworthy: enough points (`min_points`), a good fit
   (`min_fitness`), and a correction no larger than a calibration's plausible residual
   (`max_rotation`, `max_shift` at the workspace centre `check_point`). A hand mostly hidden or
   cut off by the image edge can slide into a wrong fit; such a camera keeps its calibration, and
   the reason is reported.

Cameras on the hand (the wrist camera) are left alone: the hand is not a target for them. The
peg held in the fingers lies inside the box; most of its points find no model surface within the
last ICP distance, and the few beside the fingers weigh little (the ICP's robust weights).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError, check_choice, check_range
from sim.perception.icp import IcpTarget, icp
from sim.perception.models import matrix_to_pose, pose_to_matrix

CHECK_POINT = (0.525, 0.0, 0.0)
"""Where a correction's shift is measured by default [m, base frame]: the centre of the default
workspace's floor (`table_centre(sim.limits.DEFAULT_WORKSPACE)`), where the boards lie."""
MESH_KINDS = ("collision", "visual")
"""Which of the Panda description's meshes model the hand (`sim.panda.hand_meshes`)."""


@dataclasses.dataclass(frozen=True)
class HandEyeConfig:
    """How cameras are refined on the hand (module docstring).

    Attributes:
        enabled: refine at all (False: every camera keeps its calibration).
        meshes: the hand model's meshes, one of MESH_KINDS: "collision" is what the simulators
            render; on a real arm "visual" is closer to the hand the cameras see.
        model_points: points sampled on the hand model.
        margin: the hand's box is grown by this on every side before its points are taken [m]
            (the calibration error plus depth noise must stay inside).
        distances: ICP correspondence distances [m], coarse to fine; the last one scores.
        iterations: ICP iterations per distance at most.
        min_points: fewer of the camera's points on the hand than this: not refined.
        min_fitness: share of those points within the last distance of the model, at least.
        max_rotation: a correction turning the camera more than this is not believed [rad].
        max_shift: a correction moving the workspace centre more than this is not believed [m].
        table: also register the camera's points on the table (within `table_band` [m] of the
            plane z = `table_z` [m], base frame, off the hand; at most `table_points` of them) on
            that plane: it pins the camera's tilt and height, which the hand alone, small and
            often half in view, leaves loose.
    """

    enabled: bool = True
    meshes: str = "collision"
    model_points: int = 20_000
    margin: float = 0.01
    distances: tuple[float, ...] = (0.01, 0.005, 0.003, 0.002)
    iterations: int = 30
    min_points: int = 300
    min_fitness: float = 0.8
    max_rotation: float = float(np.radians(0.5))
    max_shift: float = 0.005
    table: bool = True
    table_z: float = 0.0
    table_band: float = 0.006
    table_points: int = 4000

    def __post_init__(self):
        check_choice("meshes", self.meshes, MESH_KINDS)
        check_range("model_points", self.model_points, 1000, 1_000_000)
        check_range("margin", self.margin, 0.0, 0.05, unit="m")
        if not self.distances:
            raise ParameterError("distances must name at least one ICP distance [m], got ()", "distances", ())
        for d in self.distances:
            check_range("distances", d, 1e-4, 0.05, unit="m")
        check_range("iterations", self.iterations, 1, 1000)
        check_range("min_points", self.min_points, 6, 1_000_000)
        check_range("min_fitness", self.min_fitness, 0.0, 1.0)
        check_range("max_rotation", self.max_rotation, 0.0, np.radians(10.0), unit="rad")
        check_range("max_shift", self.max_shift, 0.0, 0.1, unit="m")
        check_range("table_z", self.table_z, -1.0, 1.0, unit="m")
        check_range("table_band", self.table_band, 0.0, 0.05, unit="m")
        check_range("table_points", self.table_points, 0, 1_000_000)


class HandModel:
    """Points and outward normals on the hand (the HAND_LINKS of `sim.panda`) in the TCP frame
    at one finger opening, with the ICP target built on them."""

    def __init__(self, finger_opening: float, meshes: str = "collision", points: int = 20_000):
        import trimesh

        from sim import panda

        parts = [(trimesh.load(path, force="mesh"), T) for path, T in panda.hand_meshes(finger_opening, meshes)]
        area = sum(m.area for m, _ in parts)
        xyz, normals = [], []
        for i, (mesh, T) in enumerate(parts):
            n = max(100, int(points * mesh.area / area))
            p, faces = trimesh.sample.sample_surface_even(mesh, n, seed=i)
            xyz.append(p @ T[:3, :3].T + T[:3, 3])
            normals.append(mesh.face_normals[faces] @ T[:3, :3].T)
        self.points = np.concatenate(xyz)
        self.normals = np.concatenate(normals)
        self.low = self.points.min(axis=0)
        self.high = self.points.max(axis=0)
        self.target = IcpTarget(self.points, self.normals)


@functools.lru_cache(maxsize=8)
def hand_model(finger_opening_mm: int, meshes: str, points: int) -> HandModel:
    """The HandModel at an opening rounded to whole millimetres (built once per opening)."""
    return HandModel(finger_opening_mm / 1000.0, meshes, points)


class CameraRefinement(NamedTuple):
    """One camera's refinement.

    Attributes:
        camera: its name.
        believed: (7,) its calibrated pose [m, xyzw] before the refinement.
        pose: (7,) its pose [m, xyzw] to use: refined where `applied`, else the believed one.
        applied: whether the correction was kept.
        points: its points on the hand.
        fitness: share of them within the last ICP distance of the model (0 without a fit).
        rmse: their point-to-plane RMSE [m] (nan without a fit).
        rotation_deg: the correction's rotation [deg] (kept or not).
        shift_mm: how far the correction moves the workspace centre [mm] (kept or not).
        reason: "" where applied, else why not.
    """

    camera: str
    believed: np.ndarray
    pose: np.ndarray
    applied: bool
    points: int
    fitness: float
    rmse: float
    rotation_deg: float
    shift_mm: float
    reason: str

    def row(self) -> dict:
        """JSON-ready summary (results files)."""
        return {
            "camera": self.camera,
            "applied": self.applied,
            "points": self.points,
            "fitness": round(self.fitness, 3),
            "rotation_deg": round(self.rotation_deg, 3),
            "shift_mm": round(self.shift_mm, 3),
            "reason": self.reason,
        }


def refine_camera(
    camera: str,
    believed_pose,
    points,
    tcp_pose,
    gripper_width: float,
    config: HandEyeConfig = HandEyeConfig(),
    check_point=CHECK_POINT,
) -> CameraRefinement:
    """Refine one camera's pose on the hand (module docstring).

    Args:
        camera: its name (for the report).
        believed_pose: (7,) the camera's calibrated pose [m, xyzw], base frame.
        points: (N, >=3) its points [m] in the base frame as back-projected at `believed_pose`
            (NaN rows, pixels without a return, are dropped).
        tcp_pose: (7,) measured TCP pose [m, xyzw]; gripper_width: measured opening [m].
        check_point: (3,) where a correction's shift is measured [m] (the objects' place).
    """
    believed_pose = np.asarray(believed_pose, float)
    xyz = np.asarray(points, float)[:, :3]
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    model = hand_model(int(round(gripper_width * 1000)), config.meshes, config.model_points)
    T_base_tcp = pose_to_matrix(tcp_pose)
    local = (xyz - T_base_tcp[:3, 3]) @ T_base_tcp[:3, :3]
    inside = np.all((local > model.low - config.margin) & (local < model.high + config.margin), axis=1)
    scene = xyz[inside]

    def kept(reason: str, fitness=0.0, rmse=float("nan"), rotation=0.0, shift=0.0) -> CameraRefinement:
        return CameraRefinement(
            camera, believed_pose, believed_pose, False, len(scene), fitness, rmse, rotation, shift, reason
        )

    if len(scene) < config.min_points:
        return kept(f"{len(scene)} points on the hand, fewer than min_points {config.min_points}")
    plane = None
    if config.table:  # the table's points, off the hand: on the plane z = table_z
        flat = xyz[(np.abs(xyz[:, 2] - config.table_z) < config.table_band) & ~inside]
        if len(flat) > config.table_points:
            flat = flat[np.random.default_rng(0).choice(len(flat), config.table_points, replace=False)]
        plane = (flat, np.array([0.0, 0.0, 1.0]), config.table_z)
    # In the TCP frame (the model's), then back: C maps believed base points to true ones.
    T, fit = icp(
        model.target,
        scene,
        np.linalg.inv(T_base_tcp),
        config.distances,
        config.iterations,
        plane=_in(plane, T_base_tcp),
    )
    C = T_base_tcp @ T
    rotation = float(np.degrees(Rotation.from_matrix(C[:3, :3]).magnitude()))
    p = np.asarray(check_point, float)
    shift = float(np.linalg.norm(C[:3, :3] @ p + C[:3, 3] - p)) * 1e3
    if fit.fitness < config.min_fitness:
        return kept(f"fitness {fit.fitness:.3f} below min_fitness {config.min_fitness:g}", fit.fitness, fit.rmse)
    if rotation > np.degrees(config.max_rotation):
        why = f"correction turns {rotation:.2f} deg, more than max_rotation {np.degrees(config.max_rotation):.2f}"
        return kept(why, fit.fitness, fit.rmse, rotation, shift)
    if shift > config.max_shift * 1e3:
        why = f"correction moves the workspace {shift:.2f} mm, more than max_shift {config.max_shift * 1e3:g}"
        return kept(why, fit.fitness, fit.rmse, rotation, shift)
    refined = matrix_to_pose(C @ pose_to_matrix(believed_pose))
    return CameraRefinement(
        camera, believed_pose, refined, True, len(scene), fit.fitness, fit.rmse, rotation, shift, ""
    )


def table_centre(workspace) -> np.ndarray:
    """(3,) the centre of `workspace`'s floor [m] (a `sim.limits.Workspace`): where the objects lie,
    and where a correction's shift is measured."""
    low, high = np.asarray(workspace.low, float), np.asarray(workspace.high, float)
    return np.r_[(low[:2] + high[:2]) / 2, low[2]]


def _in(plane, T_base_frame: np.ndarray):
    """`plane` (points, normal, offset) with its normal and offset expressed in the frame whose
    pose in the base frame is `T_base_frame` (4, 4); its points stay base-frame scene points."""
    if plane is None:
        return None
    points, n, d = plane
    R, t = T_base_frame[:3, :3], T_base_frame[:3, 3]
    return points, R.T @ n, float(d - n @ t)


def refine_views(
    views, tcp_pose, gripper_width: float, config: HandEyeConfig = HandEyeConfig(), check_point=CHECK_POINT
) -> tuple[list, list[CameraRefinement]]:
    """(views with refined poses, one CameraRefinement per camera fixed in the world) for camera
    views [(CameraSpec, believed pose (7,), rgb, depth)] (`sim.env.FmbEnv.camera_views`); see
    `refine_camera`. Views of cameras on the hand, and all of them when `config.enabled` is
    False, are returned as they came."""
    from sim.pointcloud import camera_points

    if not config.enabled:
        return list(views), []
    out, fits = [], []
    for spec, pose, rgb, depth in views:
        if spec.on_hand:
            out.append((spec, pose, rgb, depth))
            continue
        points = camera_points(spec, np.asarray(pose, float), rgb, depth)
        fit = refine_camera(spec.name, pose, points, tcp_pose, gripper_width, config, check_point)
        fits.append(fit)
        out.append((spec, fit.pose, rgb, depth))
    return out, fits
