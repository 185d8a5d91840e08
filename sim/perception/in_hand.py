"""The held peg's pose in the hand, from the cameras after a grasp.

    held = estimate_in_hand(estimator, points, tcp_pose, gripper_width)
    held.pose       # (7,) T_tcp_peg [m, xyzw]: the peg in the TCP frame (what `tcp_goal` needs)

The robot knows where its hand is (the measured TCP pose from its kinematics, the finger opening
from the gripper): points inside the hand's and the fingers' boxes (`HandGeometry`, Franka hand,
TCP frame: z along the fingers, fingers closing along y) are removed, as are points below the top
of the objects on the table (the held peg is above them), and points farther from the TCP than the
peg's length. The peg model is then registered on what is left from initial poses constrained
near the TCP: its axis along the TCP's z, tip down (towards +z, as the grasp and rotate skills
leave it), its base `grasp_offsets` above the TCP, turned about the axis in `axis_turns` steps;
each refined by point-to-plane ICP, the best fit kept.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError, check_range
from sim.perception.icp import evaluate, icp
from sim.perception.models import matrix_to_pose, pose_to_matrix


@dataclasses.dataclass(frozen=True)
class HandGeometry:
    """Boxes of the Franka hand in the TCP frame [m] (z along the fingers, out of the hand;
    fingers close along y; TCP between the fingertips).

    Attributes:
        finger_size: (x, y, z) size of one finger's box; it spans z in [-finger_size[2] + tip, tip].
        finger_tip: z of the fingertips beyond the TCP [m].
        hand_size: (x, y, z) size of the hand body's box, which ends at z = hand_bottom.
        hand_bottom: z of the hand body's face the fingers come out of [m].
        margin: grown by this on every side (calibration and noise) [m]; not on the fingers'
            inner faces, which touch the peg.
        grasp_offsets: where the peg's base may be above the TCP, tried as initial poses [m].
    """

    finger_size: tuple[float, float, float] = (0.022, 0.025, 0.06)
    finger_tip: float = 0.006
    hand_size: tuple[float, float, float] = (0.07, 0.22, 0.08)
    hand_bottom: float = -0.052
    margin: float = 0.004
    grasp_offsets: tuple[float, ...] = (0.02, 0.03, 0.04)

    def __post_init__(self):
        check_range("margin", self.margin, 0.0, 0.05, unit="m")
        if not self.grasp_offsets:
            raise ParameterError("grasp_offsets must name at least one offset [m], got ()")

    def outside(self, points_tcp: np.ndarray, gripper_width: float) -> np.ndarray:
        """(N,) bool: which of `points_tcp` (N, 3) [m, TCP frame] lie outside the hand and both
        fingers at opening `gripper_width` [m]."""
        x, y, z = points_tcp.T
        m = self.margin
        fx, fy, fz = self.finger_size
        in_finger = (
            (np.abs(x) < fx / 2 + m)
            & (np.abs(y) > gripper_width / 2 + 0.0005)
            & (np.abs(y) < gripper_width / 2 + fy + m)
            & (z > self.finger_tip - fz - m)
            & (z < self.finger_tip + m)
        )
        hx, hy, hz = self.hand_size
        in_hand = (
            (np.abs(x) < hx / 2 + m)
            & (np.abs(y) < hy / 2 + m)
            & (z < self.hand_bottom + m)
            & (z > self.hand_bottom - hz - m)
        )
        return ~(in_finger | in_hand)


def without_hand(points, tcp_pose, gripper_width: float, hand: HandGeometry = HandGeometry()) -> np.ndarray:
    """The rows of `points` (N, >=3) [m, base frame] outside the hand and its fingers (`hand`) at
    the measured TCP pose `tcp_pose` (7,) and opening `gripper_width` [m]: a robot's self-filter,
    so that the hand next to an object (a peg it just let go of) is not taken for part of it."""
    points = np.asarray(points)
    T_tcp_base = np.linalg.inv(pose_to_matrix(tcp_pose))
    local = points[:, :3] @ T_tcp_base[:3, :3].T + T_tcp_base[:3, 3]
    return points[hand.outside(local, gripper_width)]


class HeldEstimate(NamedTuple):
    """The held peg: `pose` (7,) T_tcp_peg [m, xyzw] or None; `fitness` (0-1), inlier `rmse` [m],
    `points` registered."""

    pose: np.ndarray | None
    fitness: float
    rmse: float
    points: int


def estimate_in_hand(
    estimator, points, tcp_pose, gripper_width: float, key: str = "peg", hand: HandGeometry = HandGeometry()
) -> HeldEstimate:
    """The pose in the TCP frame of the model `key` of `estimator` (a `PoseEstimator`) held in the
    hand; see module docstring.

    Args:
        points: (N, >=3) cloud [m], base frame.
        tcp_pose: (7,) measured TCP pose [m, xyzw], base frame.
        gripper_width: measured finger opening [m].
    """
    c = estimator.config
    model = next(m for m in estimator.models if m.key == key)
    target = estimator._targets[key]
    length = float(model.points[:, 2].max())
    xyz = estimator._cropped(points)
    # Above the objects on the table (a board's top face), within the peg's reach of the TCP.
    top = max([c.table_z] + [c.table_z + float(m.extent[2]) for m in estimator.models if m.prior == "upright"])
    xyz = xyz[xyz[:, 2] > top + c.table_margin]
    T_base_tcp = pose_to_matrix(tcp_pose)
    T_tcp_base = np.linalg.inv(T_base_tcp)
    local = xyz @ T_tcp_base[:3, :3].T + T_tcp_base[:3, 3]
    reach = length + float(np.linalg.norm(model.extent[:2]))
    keep = (np.linalg.norm(local, axis=1) < reach) & hand.outside(local, gripper_width)
    scene = estimator._subsample(xyz[keep])
    if len(scene) < c.cluster_min_points:
        return HeldEstimate(None, 0.0, float("nan"), len(scene))
    few = estimator._subsample(scene, n=c.coarse_points)
    ranked = []
    for offset in hand.grasp_offsets:
        for turn in np.arange(c.axis_turns) * 2 * np.pi / c.axis_turns:
            T_tcp_peg = np.eye(4)
            T_tcp_peg[:3, :3] = Rotation.from_euler("z", turn).as_matrix()
            T_tcp_peg[2, 3] = -offset
            T_part_base = np.linalg.inv(T_base_tcp @ T_tcp_peg)
            T, _ = icp(target.down, few, T_part_base, c.icp_distances[:1], c.hypothesis_iterations)
            T, fit = icp(target.down, few, T, c.icp_distances[1:-2] or c.icp_distances[:1], c.icp_iterations)
            ranked.append(((fit.fitness, -fit.rmse), T))
    ranked.sort(key=lambda r: r[0], reverse=True)
    best = None
    for _, T in ranked[: c.refine]:
        T, fit = icp(target.full, scene, T, c.icp_distances[-2:], c.icp_iterations)
        if best is None or (fit.fitness, -fit.rmse) > best[0]:
            best = ((fit.fitness, -fit.rmse), T, fit)
    _, T, fit = best
    # Along its axis a prism's walls slide freely; its tip's edge (the lowest visible points of a
    # peg held tip down) fixes where it ends.
    moved = scene @ T[:3, :3].T + T[:3, 3]
    on_walls = np.abs(fit.residuals) < c.icp_distances[-1]
    if on_walls.sum() > 20:
        T[2, 3] += length - float(moved[on_walls, 2].max())
        fit = evaluate(target.full, scene, T, c.icp_distances[-1])
    pose = matrix_to_pose(T_tcp_base @ np.linalg.inv(T)) if fit.fitness >= c.min_fitness else None
    return HeldEstimate(pose, float(fit.fitness), float(fit.rmse), len(scene))
