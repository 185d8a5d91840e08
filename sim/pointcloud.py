"""Fused, cropped, downsampled point clouds from RGB-D cameras."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.scene import CameraSpec


def focal_length(camera: CameraSpec, height: int) -> float:
    """Focal length [px] of `camera` rendered `height` pixels high (square pixels)."""
    return 0.5 * height / np.tan(np.radians(camera.fovy) / 2)


def camera_points(camera: CameraSpec, camera_pose: np.ndarray, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(H*W, 6) points of one camera: xyz [m] in the world frame, rgb in [0, 1].

    Args:
        camera: its intrinsics (vertical field of view, size).
        camera_pose: (7,) world pose, OpenCV convention (x right, y down, z forward).
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 distance along the optical axis [m]; 0 = no return (its point is NaN).
    """
    h, w = depth.shape
    f = focal_length(camera, h)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    z = np.where(depth > 0, depth, np.nan)
    xyz = np.stack([(u - w / 2) * z / f, (v - h / 2) * z / f, z], axis=-1).reshape(-1, 3)
    world = Rotation.from_quat(camera_pose[3:]).apply(xyz) + camera_pose[:3]
    return np.concatenate([world, rgb.reshape(-1, 3) / 255.0], axis=1)


def project(camera: CameraSpec, camera_pose: np.ndarray, points: np.ndarray, shape: tuple[int, int]):
    """(rows (N,) int, columns (N,) int, depth along the optical axis (N,) [m]) of world `points`
    (N, 3) [m] in an image of `shape` (H, W) of `camera` at `camera_pose` (7,) (as `camera_points`;
    its inverse). Rows and columns may fall outside the image; depth <= 0 is behind the camera."""
    h, w = shape
    f = focal_length(camera, h)
    local = Rotation.from_quat(camera_pose[3:]).inv().apply(np.asarray(points, float) - camera_pose[:3])
    z = local[:, 2]
    safe = np.where(z > 1e-6, z, 1e-6)
    cols = np.floor(local[:, 0] / safe * f + w / 2).astype(int)
    rows = np.floor(local[:, 1] / safe * f + h / 2).astype(int)
    return rows, cols, z


def fuse_point_cloud(views, n_points: int, low, high, rng: np.random.Generator) -> np.ndarray:
    """(n_points, 6) float32 cloud from several cameras, cropped to the box [low, high] [m].

    Args:
        views: sequence of (CameraSpec, camera_pose (7,), rgb, depth).
        n_points: points returned; sampled without replacement when there are enough, padded by
            repetition otherwise (zeros when the crop is empty).
        low, high: (3,) crop box corners in the world frame [m].
        rng: random generator for the downsampling.
    """
    clouds = [camera_points(*v) for v in views]
    cloud = np.concatenate(clouds) if clouds else np.zeros((0, 6))
    keep = np.all((cloud[:, :3] >= low) & (cloud[:, :3] <= high), axis=1)
    keep &= cloud[:, 2] > 0.002  # drop the table plane
    cloud = cloud[keep]
    if len(cloud) == 0:
        return np.zeros((n_points, 6), np.float32)
    idx = rng.choice(len(cloud), n_points, replace=len(cloud) < n_points)
    return cloud[idx].astype(np.float32)
