"""A depth camera's errors, applied to the simulator's exact depth images (off unless asked for).

    sensor = SENSORS["default"]                        # an Intel RealSense D415-like stereo camera
    state = sensor.episode(rng)                        # per-episode calibration error of each camera
    depth = sensor.corrupt(depth, camera, rng)         # (H, W) [m], 0 where the camera returns nothing
    pose = sensor.believed_pose(camera_pose, state[camera.name])

Errors modelled (each a field; 0 switches it off; `SENSORS["exact"]` is the exact renderer):

- depth noise: Gaussian, sigma = `depth_noise` * z**2 [m] for depth z [m]: the stereo depth
  resolution dz = z**2 * subpixel / (f * B) of Intel's white paper "Subpixel Linearity Improvement
  for Intel RealSense Depth Camera D400 Series" (f = Xres / 2 / tan(HFOV / 2); HFOV 65 deg for
  the D415, from that paper). With Xres = 1280 px (f = 1004 px), a baseline B = 55 mm and a
  subpixel of 0.08 px (both ASSUMED: the D415 data sheet's baseline and Intel's usual subpixel
  figure, not verified here), dz(1 m) = 0.08 / (1004 * 0.055) = 1.45 mm: `depth_noise` = 1.45e-3
  [1/m], i.e. 0.5 mm at the side cameras' 0.6 m. (The D415 data sheet's bound, < 2 % RMS at 2 m,
  is looser; not verified here either.)
- missing returns at depth discontinuities: a pixel whose depth differs from a 4-neighbour's by
  more than `edge_jump` [m] returns nothing (stereo matching fails where one view is occluded),
  grown by `edge_width` pixels;
- missing returns at grazing angles: a pixel whose surface normal is more than `max_incidence`
  [rad] from the ray back to the camera returns nothing (ASSUMED 80 deg);
- extrinsic calibration error: each camera's believed pose is off its true one by a rotation of
  `extrinsic_rotation` [rad] about a random axis and a translation of `extrinsic_translation` [m]
  in a random direction, fixed per episode (ASSUMED 0.2 deg and 1 mm, a hand-eye calibration's
  usual residual).

Pixels without a return have depth 0 (as RealSense reports them); `sim.pointcloud` drops them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import check_range
from sim.exceptions import UnknownNameError
from sim.pointcloud import focal_length
from sim.scene import CameraSpec


@dataclasses.dataclass(frozen=True)
class SensorModel:
    """Depth camera errors; see module docstring. All zero (the default) is exact depth.

    Attributes:
        depth_noise: sigma of the depth noise at 1 m [1/m]; sigma(z) = depth_noise * z**2 [m].
        edge_jump: depth step to a neighbour beyond which a pixel returns nothing [m] (0 = off).
        edge_width: pixels around such a step that also return nothing.
        max_incidence: surfaces seen at more than this from their normal return nothing [rad]
            (pi/2 = off).
        extrinsic_rotation: per-episode error of each camera's orientation [rad].
        extrinsic_translation: per-episode error of each camera's position [m].
    """

    depth_noise: float = 0.0
    edge_jump: float = 0.0
    edge_width: int = 1
    max_incidence: float = np.pi / 2
    extrinsic_rotation: float = 0.0
    extrinsic_translation: float = 0.0

    def __post_init__(self):
        check_range("depth_noise", self.depth_noise, 0.0, 0.1, unit="1/m")
        check_range("edge_jump", self.edge_jump, 0.0, 1.0, unit="m")
        check_range("edge_width", self.edge_width, 0, 10, unit="px")
        check_range("max_incidence", self.max_incidence, np.radians(10.0), np.pi / 2, unit="rad")
        check_range("extrinsic_rotation", self.extrinsic_rotation, 0.0, np.radians(10.0), unit="rad")
        check_range("extrinsic_translation", self.extrinsic_translation, 0.0, 0.1, unit="m")

    @property
    def exact(self) -> bool:
        """Whether this model changes nothing."""
        return self == SensorModel(edge_width=self.edge_width)

    def episode(self, rng: np.random.Generator, cameras) -> dict[str, np.ndarray]:
        """camera name -> (4, 4) T_true_believed: the calibration error of each of `cameras`
        (CameraSpec or names) for one episode, drawn from `rng`."""
        errors = {}
        for cam in cameras:
            name = cam.name if isinstance(cam, CameraSpec) else str(cam)
            T = np.eye(4)
            axis = rng.normal(size=3)
            T[:3, :3] = Rotation.from_rotvec(self.extrinsic_rotation * axis / np.linalg.norm(axis)).as_matrix()
            direction = rng.normal(size=3)
            T[:3, 3] = self.extrinsic_translation * direction / np.linalg.norm(direction)
            errors[name] = T
        return errors

    def believed_pose(self, camera_pose: np.ndarray, error: np.ndarray) -> np.ndarray:
        """(7,) pose [m, xyzw] the robot believes the camera at `camera_pose` (7,) has, given its
        calibration `error` (4, 4) from `episode`."""
        T = np.eye(4)
        T[:3, :3] = Rotation.from_quat(camera_pose[3:]).as_matrix()
        T[:3, 3] = camera_pose[:3]
        T = T @ error
        return np.concatenate([T[:3, 3], Rotation.from_matrix(T[:3, :3]).as_quat()])

    def corrupt(self, depth: np.ndarray, camera: CameraSpec, rng: np.random.Generator) -> np.ndarray:
        """(H, W) float32 depth [m] as the camera would measure `depth` (H, W) (exact, along the
        optical axis [m]): noisy, 0 where it returns nothing. Draws from `rng`."""
        z = np.asarray(depth, np.float32)
        valid = np.isfinite(z) & (z > 0)
        drop = ~valid
        if self.edge_jump > 0:
            drop |= _edges(np.where(valid, z, 0.0), self.edge_jump, self.edge_width)
        if self.max_incidence < np.pi / 2:
            drop |= _incidence(z, camera) > self.max_incidence
        out = z.copy()
        if self.depth_noise > 0:
            out = out + (self.depth_noise * z**2 * rng.standard_normal(z.shape)).astype(np.float32)
        out[drop] = 0.0
        return out


def _edges(z: np.ndarray, jump: float, width: int) -> np.ndarray:
    """(H, W) bool: pixels within `width` of a 4-neighbour depth step over `jump` [m]."""
    edge = np.zeros(z.shape, bool)
    dy = np.abs(np.diff(z, axis=0)) > jump
    dx = np.abs(np.diff(z, axis=1)) > jump
    edge[1:] |= dy
    edge[:-1] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    for _ in range(max(0, width - 1)):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def _incidence(z: np.ndarray, camera: CameraSpec) -> np.ndarray:
    """(H, W) angle [rad] between each pixel's surface normal (from neighbouring pixels) and the
    ray back to the camera (0 where the normal is undefined)."""
    h, w = z.shape
    f = focal_length(camera, h)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    p = np.stack([(u - w / 2) * z / f, (v - h / 2) * z / f, z], axis=-1)
    du = np.gradient(p, axis=1)
    dv = np.gradient(p, axis=0)
    n = np.cross(du, dv)
    norm = np.linalg.norm(n, axis=-1)
    ray = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-9)
    cos = np.abs(np.einsum("ijk,ijk->ij", n, ray)) / np.maximum(norm, 1e-12)
    return np.where(norm > 0, np.arccos(np.clip(cos, 0.0, 1.0)), 0.0)


SENSORS: dict[str, SensorModel] = {
    "exact": SensorModel(),
    "default": SensorModel(
        depth_noise=1.45e-3,
        edge_jump=0.01,
        edge_width=1,
        max_incidence=np.radians(80.0),
        extrinsic_rotation=np.radians(0.2),
        extrinsic_translation=0.001,
    ),
}
"""Named sensor models: "exact" (the renderer's depth) and "default" (D415-like; see module doc)."""


def make_sensor(name: str, **overrides) -> SensorModel:
    """The sensor model called `name` with fields replaced by `overrides` (None values ignored)."""
    if name not in SENSORS:
        raise UnknownNameError(f"unknown sensor {name!r}; known: {', '.join(sorted(SENSORS))}")
    return dataclasses.replace(SENSORS[name], **{k: v for k, v in overrides.items() if v is not None})
