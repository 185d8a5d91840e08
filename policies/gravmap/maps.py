"""GravMaps: voxel maps over the workspace built from one sub-goal (after GravMAD). Numpy (the
value formulas also run on torch tensors: they use arithmetic operators only).

For a sub-goal at g [m] with gripper openness o in [0, 1] (1 = open), at a point x [m]::

    d(x)       = |x - g|                                   distance to the sub-goal [m]
    cost(x)    = d / (d + rho)                             0 at the sub-goal, 1/2 at d = rho,
                                                           rising towards 1 far away (never flat)
    gripper(x) = (2 o - 1) * exp(-d^2 / (2 sigma^2))       +1 near an open sub-goal, -1 near a
                                                           closed one, 0 (no preference) far away

A policy sees the maps on a G x G x G grid centred on the current TCP (side 2 * extent), so the
map says where the sub-goal lies *relative to the hand*: a board moved outside the training box
gives the same maps as one inside it, for the same relative sub-goal.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from fmb_core.errors import ParameterError, check_range


@dataclasses.dataclass(frozen=True)
class GravMapSpec:
    """Shape of the maps.

    Attributes:
        grid: voxels per side, G.
        extent: half the side of the grid's cube [m].
        rho: distance at which the cost is 1/2 [m].
        sigma: width of the gripper map's bump [m].
    """

    grid: int = 8
    extent: float = 0.12
    rho: float = 0.03
    sigma: float = 0.02

    def __post_init__(self):
        check_range("gravmap grid", self.grid, 2, 64)
        check_range("gravmap extent", self.extent, 1e-3, 2.0, "m")
        check_range("gravmap rho", self.rho, 1e-4, 1.0, "m")
        check_range("gravmap sigma", self.sigma, 1e-4, 1.0, "m")


class GravMap(NamedTuple):
    """Maps of one sub-goal on a grid.

    Attributes:
        points: (G, G, G, 3) voxel centres [m], base frame (axes x, y, z = array axes 0, 1, 2).
        cost: (G, G, G) cost in [0, 1).
        gripper: (G, G, G) gripper map in [-1, 1].
        subgoal: (3,) sub-goal position [m]; openness: its gripper openness in [0, 1].
    """

    points: np.ndarray
    cost: np.ndarray
    gripper: np.ndarray
    subgoal: np.ndarray
    openness: float


def cost_value(x, goal, rho: float):
    """Cost at points `x` (..., 3) [m] of the sub-goal `goal` (broadcastable, [m]): d / (d + rho).
    Works on numpy arrays and torch tensors."""
    d = (((x - goal) ** 2).sum(-1) + 1e-12) ** 0.5
    return d / (d + rho)


def gripper_value(x, goal, openness, sigma: float):
    """Gripper map at points `x` (..., 3): (2 o - 1) exp(-d^2 / 2 sigma^2); `openness` broadcasts
    against the points' leading axes. Works on numpy arrays and torch tensors."""
    d2 = ((x - goal) ** 2).sum(-1)
    return (2.0 * openness - 1.0) * math.e ** (-d2 / (2.0 * sigma**2))


def grid_offsets(spec: GravMapSpec) -> np.ndarray:
    """(G, G, G, 3) voxel centres relative to the grid centre [m]."""
    g = spec.grid
    axis = (np.arange(g) + 0.5) / g * 2.0 * spec.extent - spec.extent
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)


def build_gravmap(
    subgoal: np.ndarray, openness: float, centre: np.ndarray, spec: GravMapSpec = GravMapSpec()
) -> GravMap:
    """The maps of the sub-goal `subgoal` (3,) [m] with `openness` in [0, 1] on the grid of `spec`
    centred at `centre` (3,) [m] (the TCP for a policy; the workspace for a picture)."""
    subgoal = np.asarray(subgoal, float)
    centre = np.asarray(centre, float)
    if subgoal.shape != (3,) or centre.shape != (3,):
        raise ParameterError(f"subgoal and centre must be (3,) positions, got {subgoal.shape} and {centre.shape}")
    check_range("openness", openness, 0.0, 1.0)
    points = grid_offsets(spec) + centre
    return GravMap(
        points,
        cost_value(points, subgoal, spec.rho),
        gripper_value(points, subgoal, float(openness), spec.sigma),
        subgoal,
        float(openness),
    )
