"""Fused, cropped, downsampled point clouds from RGB-D cameras."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from sim.scene import CameraSpec


def camera_points(camera: CameraSpec, camera_pose: np.ndarray, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(H*W, 6) points of one camera: xyz [m] in the world frame, rgb in [0, 1].

    Args:
        camera: its intrinsics (vertical field of view, size).
        camera_pose: (7,) world pose, OpenCV convention (x right, y down, z forward).
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 distance along the optical axis [m]; 0 = no return (its point is NaN).
    """
    h, w = depth.shape
    f = 0.5 * h / np.tan(np.radians(camera.fovy) / 2)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    z = np.where(depth > 0, depth, np.nan)
    xyz = np.stack([(u - w / 2) * z / f, (v - h / 2) * z / f, z], axis=-1).reshape(-1, 3)
    world = Rotation.from_quat(camera_pose[3:]).apply(xyz) + camera_pose[:3]
    return np.concatenate([world, rgb.reshape(-1, 3) / 255.0], axis=1)


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
