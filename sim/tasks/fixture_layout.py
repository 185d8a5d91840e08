"""Where the reorientation fixture stands, and poses of a peg standing in it.

FMB screws the fixture to the bin; we place it at (0.42, 0.30) m, yaw 0, with +-1 cm and +-5 deg
of jitter per episode (stated here, drawn from the episode's seed).
"""

from __future__ import annotations

import numpy as np

from sim.objects import fixture_part
from sim.spatial import compose, pose, quat_from_euler, quat_from_yaw

FIXTURE_XY = np.array([0.42, 0.30])
FIXTURE_JITTER = 0.01  # [m]
FIXTURE_YAW_JITTER = np.radians(5.0)


def draw_fixture_pose(rng: np.random.Generator) -> np.ndarray:
    """(7,) world pose of the fixture's frame (centre of its bottom face)."""
    xy = FIXTURE_XY + rng.uniform(-1, 1, 2) * FIXTURE_JITTER
    return pose([xy[0], xy[1], 0.0], quat_from_yaw(rng.uniform(-1, 1) * FIXTURE_YAW_JITTER))


def pocket_frame(fixture_pose: np.ndarray) -> np.ndarray:
    """(7,) world pose of the pocket floor's centre (+z up)."""
    f = fixture_part().frames["pocket"]
    return compose(fixture_pose, pose(f.position, f.quaternion))


def fixture_top(fixture_pose: np.ndarray) -> float:
    """Height of the fixture's top face [m]."""
    return float(fixture_pose[2] + fixture_part().frames["top"].position[2])


def standing_in_pocket(fixture_pose: np.ndarray, length: float, yaw: float, lift: float = 0.0) -> np.ndarray:
    """(7,) pose of a peg of `length` [m] standing tip-down on the pocket floor (raised by `lift`
    [m]), turned by `yaw` [rad] about the vertical relative to the fixture."""
    base = pose([0.0, 0.0, length + lift], quat_from_euler(np.pi, 0.0, 0.0))
    return compose(compose(pocket_frame(fixture_pose), pose([0, 0, 0], quat_from_yaw(yaw))), base)
