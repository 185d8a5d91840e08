"""Initial poses for registration: few, and from what the cluster's shape already says.

    board_hypotheses(model, cluster, table_z, yaw, yaw_range, yaw_step)   # flat on the table
    free_hypotheses(model, cluster, turns)                                # a peg in any pose

Poses are (4, 4) T_base_part; clusters (K, 3) points [m] in the base frame.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation

from sim.perception.models import ObjectModel


def footprint_rectangle(xy: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(centre (2,) [m], yaw in [0, pi/2) [rad], size (2,) along its axes [m]) of the
    minimum-area rectangle around `xy` (K, 2) (rotating calipers over the hull's edge directions)."""
    try:
        hull = xy[ConvexHull(xy).vertices]
    except QhullError:
        hull = xy
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    best = None
    for a in angles:
        R = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # world -> rectangle axes
        local = hull @ R.T
        low, high = local.min(0), local.max(0)
        area = float(np.prod(high - low))
        if best is None or area < best[0]:
            best = (area, R.T @ (0.5 * (low + high)), float(a), high - low)
    return best[1], best[2], best[3]


def board_hypotheses(
    model: ObjectModel, cluster: np.ndarray, table_z: float, yaw: float, yaw_range: float, yaw_step: float
) -> list[np.ndarray]:
    """Flat-on-the-table poses: the footprint rectangle's centre, its four 90 deg turns within
    `yaw_range` of the prior `yaw` [rad] (a square board's outline fits all four: the prior picks
    the one its holes face). When none lies within the prior, the prior's yaw and its neighbours
    at `yaw_step` are tried instead. A side of the footprint shorter than the model's by over 1 cm
    (hidden behind another object) adds centres flush with either of its ends."""
    centre, rect_yaw, size = footprint_rectangle(cluster[:, :2])
    model_size = np.sort(model.extent[:2])
    shifts = []
    for axis in range(2):
        short = model_size[axis] - size[axis]
        shifts.append([0.0, -0.5 * short, 0.5 * short] if short > 0.01 else [0.0])
    u = np.array([np.cos(rect_yaw), np.sin(rect_yaw)])
    v = np.array([-u[1], u[0]])
    centres = [centre + a * u + b * v for a in shifts[0] for b in shifts[1]]
    yaws = [rect_yaw + k * np.pi / 2 for k in range(4)]
    yaws = [yaw + np.angle(np.exp(1j * (y - yaw))) for y in yaws]
    kept = [y for y in yaws if abs(y - yaw) <= yaw_range]
    if not kept:
        kept = [yaw + k * yaw_step for k in (-1, 0, 1)]
    model_centre = 0.5 * (model.points.min(0) + model.points.max(0))
    inits = []
    for y in kept:
        for xy in centres:
            T = np.eye(4)
            T[:3, :3] = Rotation.from_euler("z", y).as_matrix()
            offset = T[:3, :3] @ model_centre
            T[:3, 3] = [xy[0] - offset[0], xy[1] - offset[1], table_z - model.points[:, 2].min()]
            inits.append(T)
    return inits


def free_hypotheses(model: ObjectModel, cluster: np.ndarray, turns: int) -> list[np.ndarray]:
    """Any-orientation poses: the model's longest box axis along the cluster's principal axis,
    both ways, turned about it in `turns` steps, centred on the cluster's mean."""
    axes = np.linalg.svd(cluster - cluster.mean(0), full_matrices=False)[2]
    to_z = _axis_to_z(int(np.argmax(model.extent)))
    inits = []
    for sign in (1.0, -1.0):
        frame = np.stack([axes[1], np.cross(sign * axes[0], axes[1]), sign * axes[0]], axis=1)
        for turn in np.arange(turns) * 2 * np.pi / turns:
            T = np.eye(4)
            T[:3, :3] = frame @ Rotation.from_euler("z", turn).as_matrix() @ to_z
            T[:3, 3] = cluster.mean(0) - T[:3, :3] @ model.points.mean(0)
            inits.append(T)
    return inits


def axis_up(T_base_part: np.ndarray) -> bool:
    """Whether the part's z axis (a peg's base -> tip) points within 60 deg of straight up."""
    return bool(T_base_part[2, 2] > 0.5)


def _axis_to_z(axis: int) -> np.ndarray:
    """(3, 3) rotation taking the part's box axis `axis` (0, 1, 2) onto z."""
    return {0: Rotation.from_euler("y", -90, degrees=True), 1: Rotation.from_euler("x", 90, degrees=True)}.get(
        axis, Rotation.identity()
    ).as_matrix()
