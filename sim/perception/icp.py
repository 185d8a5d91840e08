"""Point-to-plane ICP onto a model whose KD-tree is built once (numpy + scipy).

    target = IcpTarget(model_points, model_normals)         # (M, 3), (M, 3) in the part frame [m]
    T, fit = icp(target, scene_points, T_part_scene, distances=(0.01, 0.004), iterations=10)

open3d's `registration_icp` rebuilds the target's KD-tree on every call, which for a board model
of ~60k points costs more than the registration itself; here the tree is built once per part and
each iteration is one nearest-neighbour query of the (few thousand) scene points plus a 6x6 (or,
for an object known to lie flat, 3x3) linear solve. Transforms are (4, 4) maps of scene (base
frame) points into the part frame, T_part_base.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation


class Fit(NamedTuple):
    """Registration quality: `fitness` (share of scene points within the last distance of the
    model), inlier `rmse` [m], and `residuals` (N,) point-to-plane distances [m] (inf = no match)."""

    fitness: float
    rmse: float
    residuals: np.ndarray


class IcpTarget:
    """A model cloud with normals and its KD-tree (part frame, [m])."""

    def __init__(self, points: np.ndarray, normals: np.ndarray):
        self.points = np.asarray(points, float)
        self.normals = np.asarray(normals, float)
        self.tree = cKDTree(self.points)

    def match(self, scene: np.ndarray, T: np.ndarray, distance: float):
        """(moved (N, 3), index (N,), point-to-plane residual (N,), within (N,) bool) of `scene`
        moved by T onto the model, matched to nearest model points closer than `distance` [m]."""
        moved = scene @ T[:3, :3].T + T[:3, 3]
        dist, index = self.tree.query(moved, distance_upper_bound=distance)
        within = np.isfinite(dist)
        index = np.where(within, index, 0)
        residual = np.einsum("ij,ij->i", moved - self.points[index], self.normals[index])
        return moved, index, residual, within


def icp(
    target: IcpTarget,
    scene: np.ndarray,
    T: np.ndarray,
    distances=(0.01, 0.004),
    iterations: int = 15,
    planar: bool = False,
    tolerance: float = 1e-4,
    plane=None,
) -> tuple[np.ndarray, Fit]:
    """Point-to-plane ICP of `scene` (N, 3) [m] onto `target` from `T` (4, 4), coarse to fine.

    Args:
        distances: correspondence distances [m], one stage each; the last one scores.
        iterations: at most this many per stage (a stage ends when the step is below `tolerance`).
        planar: only turn about z and move in x, y (an object flat on the table, part z = base z).
        plane: optional (points (K, 3) [m], unit normal (3,), offset d [m]): more scene points known
            to lie on the model-frame plane n . x = d (a table), registered with the model's.
    Returns:
        (T (4, 4) refined, Fit at the last distance).
    """
    T = np.array(T, float)
    for distance in distances:
        for _ in range(iterations):
            moved, index, residual, within = target.match(scene, T, distance)
            if within.sum() < 6:
                break
            q, n, r = moved[within], target.normals[index[within]], residual[within]
            if plane is not None and len(plane[0]):
                on = plane[0] @ T[:3, :3].T + T[:3, 3]
                off = on @ np.asarray(plane[1], float) - plane[2]
                near = np.abs(off) < distance
                q = np.concatenate([q, on[near]])
                n = np.concatenate([n, np.tile(plane[1], (int(near.sum()), 1))])
                r = np.concatenate([r, off[near]])
            # Huber-like weights: a point far off the plane counts less.
            w = 1.0 / np.maximum(1.0, np.abs(r) / (0.3 * distance))
            J = np.concatenate([np.cross(q, n), n], axis=1)  # (K, 6): rotation, translation
            if planar:
                J = J[:, [2, 3, 4]]
            A = (J * w[:, None]).T @ J
            b = (J * w[:, None]).T @ r
            try:
                x = -np.linalg.solve(A + 1e-9 * np.eye(len(A)), b)
            except np.linalg.LinAlgError:
                break
            if planar:
                x = np.array([0.0, 0.0, x[0], x[1], x[2], 0.0])
            step = np.eye(4)
            step[:3, :3] = Rotation.from_rotvec(x[:3]).as_matrix()
            step[:3, 3] = x[3:]
            T = step @ T
            if np.linalg.norm(x) < tolerance:
                break
    return T, evaluate(target, scene, T, distances[-1])


def evaluate(target: IcpTarget, scene: np.ndarray, T: np.ndarray, distance: float) -> Fit:
    """Fit of `scene` moved by T at correspondence distance `distance` [m]."""
    _, _, residual, within = target.match(scene, T, distance)
    residual = np.where(within, np.abs(residual), np.inf)
    n = int(within.sum())
    rmse = float(np.sqrt(np.mean(residual[within] ** 2))) if n else float("nan")
    return Fit(n / max(1, len(scene)), rmse, residual)
