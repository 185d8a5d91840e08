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

Along its axis a prism's walls slide freely, so the tip's end fixes where the peg is: first at the
lowest points seen on its walls. A depth camera returns nothing for a pixel or two each side of a
depth edge (`sim.sensor`; stereo cameras do the same), so those points lie a band above the tip
(about 4 mm here). Given the cameras' depth images (`views`), `free_space_shift` then slides the
peg tip-first until its tip would hide surfaces the cameras do see behind it (free space), and
puts the tip halfway between the two bounds: the edge lies in the middle of a band that drops
pixels on both of its sides.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError, check_range
from sim.perception.icp import evaluate, icp
from sim.perception.models import matrix_to_pose, pose_to_matrix
from sim.pointcloud import project

TIP_BAND = 0.006
"""The model's points within this of the tip are the ones `free_space_shift` slides [m]."""
TIP_SEARCH = 0.02
"""`free_space_shift` slides the tip at most this far beyond the lowest points seen [m]."""
TIP_STEP = 0.00025
"""... in steps of this [m]."""
SEEN_BEHIND = 0.004
"""A pixel whose depth is this much beyond a model point's sees past where the peg would be [m]."""
ONSET = (10, 0.02)
"""The tip has entered free space once this many of its projected points, or this fraction of
them if more, see past it (beyond those that did before it moved)."""


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
    `points` registered; `tip`: what placed its tip along its axis ("free space", or "lowest seen"
    and why not by free space)."""

    pose: np.ndarray | None
    fitness: float
    rmse: float
    points: int
    tip: str = ""


def free_space_shift(tip_points, T_base_part, views) -> float | None:
    """How far [m] to slide a held peg along its axis, tip first, from the pose `T_base_part`
    (4, 4) whose tip sits at the lowest points seen on it: half the distance at which its
    `tip_points` (M, 3) [m, part frame, +z towards the tip] would first hide what the cameras see
    behind them (`ONSET`); None when no camera sees past the tip within TIP_SEARCH.

    Args:
        views: [(CameraSpec, pose (7,) [m, xyzw, base frame], rgb, depth (H, W) [m, 0 = no
            return])] as the cloud was made from (`sim.env.FmbEnv.camera_views`, refined).
    """
    shifts = np.arange(0.0, TIP_SEARCH + TIP_STEP / 2, TIP_STEP)
    seen_past = np.zeros(len(shifts))
    projected = 0
    for k, shift in enumerate(shifts):
        moved = (tip_points + [0.0, 0.0, shift]) @ T_base_part[:3, :3].T + T_base_part[:3, 3]
        for camera, pose, _, depth in views:
            rows, cols, z = project(camera, np.asarray(pose, float), moved, depth.shape)
            inside = (rows >= 0) & (rows < depth.shape[0]) & (cols >= 0) & (cols < depth.shape[1]) & (z > 0)
            measured = depth[rows[inside], cols[inside]]
            seen_past[k] += np.count_nonzero((measured > 0) & (measured > z[inside] + SEEN_BEHIND))
            projected += np.count_nonzero(inside) if k == 0 else 0
    entered = np.flatnonzero(seen_past - seen_past[0] >= max(ONSET[0], ONSET[1] * projected))
    if len(entered) == 0:
        return None
    return 0.5 * float(shifts[entered[0]])


def estimate_in_hand(
    estimator,
    points,
    tcp_pose,
    gripper_width: float,
    key: str = "peg",
    hand: HandGeometry = HandGeometry(),
    views=None,
) -> HeldEstimate:
    """The pose in the TCP frame of the model `key` of `estimator` (a `PoseEstimator`) held in the
    hand; see module docstring.

    Args:
        points: (N, >=3) cloud [m], base frame.
        tcp_pose: (7,) measured TCP pose [m, xyzw], base frame.
        gripper_width: measured finger opening [m].
        views: the camera views the cloud was fused from (`free_space_shift`); None: the tip
            stays at the lowest points seen.
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
            T, coarse = icp(target.down, few, T, c.icp_distances[1:-2] or c.icp_distances[:1], c.icp_iterations)
            fine = evaluate(target.down, few, T, c.icp_distances[-1])
            ranked.append(((coarse.fitness, -coarse.rmse), (fine.fitness, -fine.rmse), T))
    # The best `refine` at the coarse distance and the best at the finest go on: at the coarse one
    # a peg turned a quarter turn in the hand can have nearly every point "within" (fitness 0.95
    # at 3 mm RMSE) ahead of the right pose (0.94 at 0.6 mm); at the finest one the turns of a
    # three-prong, which differ by a millimetre, can swap. The fine stage on all points decides.
    chosen = {}
    for rank in (0, 1):
        for entry in sorted(ranked, key=lambda r: r[rank], reverse=True)[: c.refine]:
            chosen[id(entry)] = entry[2]
    best = None
    for T in chosen.values():
        T, fit = icp(target.full, scene, T, c.icp_distances[-2:], c.icp_iterations)
        if best is None or (fit.fitness, -fit.rmse) > best[0]:
            best = ((fit.fitness, -fit.rmse), T, fit)
    _, T, fit = best
    # Along its axis a prism's walls slide freely; its tip's edge (the lowest visible points of a
    # peg held tip down) fixes where it ends, the free space beyond it where it ends at most.
    moved = scene @ T[:3, :3].T + T[:3, 3]
    on_walls = np.abs(fit.residuals) < c.icp_distances[-1]
    tip = "lowest seen (no depth views)"
    if on_walls.sum() <= 20:
        tip = "as registered (too few points on its walls)"
    else:
        T[2, 3] += length - float(moved[on_walls, 2].max())
        if views:
            shift = free_space_shift(model.points[model.points[:, 2] > length - TIP_BAND], np.linalg.inv(T), views)
            T[2, 3] -= shift or 0.0
            tip = "free space" if shift is not None else "lowest seen (no camera sees past the tip)"
        fit = evaluate(target.full, scene, T, c.icp_distances[-1])
    pose = matrix_to_pose(T_tcp_base @ np.linalg.inv(T)) if fit.fitness >= c.min_fitness else None
    return HeldEstimate(pose, float(fit.fitness), float(fit.rmse), len(scene), tip)
