"""Geometry shared by tasks: target poses of pegs in holes and where a held peg sits in the hand."""

from __future__ import annotations

import functools

import numpy as np
from scipy.spatial.transform import Rotation
from shapely import affinity

from cad.peg import PegSpec
from sim.spatial import compose, inverse, pose, quat_from_euler, z_axis

TCP_DOWN = np.array([1.0, 0.0, 0.0, 0.0])
"""TCP orientation pointing straight down (180 deg about x), fingers closing along world -y."""


@functools.lru_cache(maxsize=256)
def flip_yaw(spec: PegSpec) -> float:
    """Yaw [rad] that makes the section of a peg held tip-down match its (upright) hole.

    Turning a peg tip-down (180 deg about its x axis) mirrors its section across the x axis;
    for FMB's shapes a yaw of 0 or pi undoes that. We pick the yaw on a 1-degree grid whose
    section best overlaps the unmirrored one.
    """
    section = spec.section()
    mirrored = affinity.scale(section, 1.0, -1.0, origin=(0, 0))
    best, best_iou = 0.0, -1.0
    for deg in range(0, 360):
        turned = affinity.rotate(mirrored, deg, origin=(0, 0))
        iou = turned.intersection(section).area / turned.union(section).area
        if iou > best_iou + 1e-9:
            best, best_iou = np.radians(deg), iou
    return float(best)


def held_peg_in_tcp(grasp_offset: float) -> np.ndarray:
    """(7,) pose of a peg frame in the TCP frame for a tip-down peg grasped `grasp_offset` [m]
    below its base (the base face is at the top, the tip points along the TCP's +z)."""
    return pose([0.0, 0.0, -grasp_offset])


def inserted_peg_pose(hole_pose: np.ndarray, spec: PegSpec, depth: float) -> np.ndarray:
    """(7,) world pose of a tip-down peg inserted `depth` [m] into the hole at `hole_pose` (7,)
    (hole frame on the board's top face, +z out of the board)."""
    length = spec.length_m
    # Peg frame: origin at the base, +z to the tip. Tip-down: rotate 180 deg about x, then the
    # yaw that matches the mirrored section to the hole.
    rot = quat_from_euler(np.pi, 0.0, 0.0)
    yaw = pose([0, 0, 0], quat_from_euler(0.0, 0.0, flip_yaw(spec)))
    base_in_hole = pose([0.0, 0.0, length - depth], rot)
    return compose(compose(hole_pose, yaw), base_in_hole)


def comfortable_grasp(peg_pose: np.ndarray, peg_in_tcp: np.ndarray) -> np.ndarray:
    """TCP pose (7,) holding a peg at `peg_pose` with `peg_in_tcp`, or the same grasp turned by
    180 deg about the TCP axis (a parallel gripper is symmetric), whichever keeps the hand's x
    axis pointing forward (+x of the base), away from the wrist's joint limit."""
    best = None
    for flip in (0.0, np.pi):
        turned = compose(pose([0, 0, 0], quat_from_euler(0.0, 0.0, flip)), peg_in_tcp)
        tcp = compose(peg_pose, inverse(turned))
        forward = Rotation.from_quat(tcp[3:]).apply([1.0, 0.0, 0.0])[0]
        if best is None or forward > best[0]:
            best = (forward, tcp)
    return best[1]


@functools.lru_cache(maxsize=256)
def symmetry_angles(spec: PegSpec, clearance: float) -> tuple[float, ...]:
    """Rotations [rad] in [0, 2 pi) after which the peg still fits its hole; 0 first.

    A rotation counts when the section turned about its centroid (a star's centre of symmetry is
    not its bounding-box centre) stays inside the section offset by `clearance` [m]. FMB's star,
    hexagon and 3-prong are stretched slightly to their measured bounding boxes, so this is the
    test that matters, not exact symmetry. Neighbouring degrees are grouped and the best of each
    group kept; a group wider than 90 degrees means a round section: every degree is returned.
    """
    section = spec.section()
    centre = section.centroid
    hole = section.buffer(clearance, quad_segs=16)
    slack = []
    for d in range(360):
        turned = affinity.rotate(section, d, origin=centre)
        slack.append(turned.difference(hole).area)
    slack = np.asarray(slack)
    good = slack <= 1e-10
    if good.all():
        return tuple(np.radians(np.arange(360.0)))
    start = int(np.argmin(good))  # a bad degree: groups do not wrap around it
    groups, current = [], []
    for k in range(360):
        d = (start + k) % 360
        if good[d]:
            current.append(d)
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    if any(len(g) > 90 for g in groups):
        return tuple(np.radians(np.arange(360.0)))
    best = sorted(g[len(g) // 2] for g in groups)
    return tuple(float(np.radians(d)) for d in best)


def yaw_error(peg_quat, goal_quat, symmetries) -> float:
    """Smallest rotation [rad] about the goal's z axis from the peg's orientation to the goal's,
    modulo the section's `symmetries` (angles [rad], see `symmetry_angles`); tilt is ignored."""
    x_peg = Rotation.from_quat(peg_quat).apply([1.0, 0.0, 0.0])
    goal = Rotation.from_quat(goal_quat)
    local = goal.inv().apply(x_peg)
    yaw = np.arctan2(local[1], local[0])
    return float(min(abs((yaw - a + np.pi) % (2 * np.pi) - np.pi) for a in symmetries))


def nearest_fitting_goal(info: dict, goal: np.ndarray, hole: np.ndarray, peg: np.ndarray) -> np.ndarray:
    """The inserted peg pose `goal` (7,), turned about the hole axis through the section's
    centroid by the fitting turn (info["symmetries"]) nearest the peg's orientation `peg` (7,).
    Info without symmetries (a single fitting turn) returns `goal`."""
    if "symmetries" not in info:
        return goal
    return turned_goal(info, goal, hole, nearest_fitting_turn(info, goal, hole, peg))


def nearest_fitting_turn(info: dict, goal: np.ndarray, hole: np.ndarray, peg: np.ndarray) -> float:
    """The fitting turn [rad] of info["symmetries"] (0 without them) about the `hole`'s axis that
    brings the inserted peg pose `goal` (7,) nearest the orientation of `peg` (7,)."""
    if "symmetries" not in info:
        return 0.0
    axis = z_axis(hole[3:])
    # All turns at once (a round peg has 360 of them, and experts call this every step).
    turns = Rotation.from_rotvec(np.asarray(info["symmetries"], float)[:, None] * axis)
    candidates = turns * Rotation.from_quat(goal[3:])
    k = int(np.argmin((candidates * Rotation.from_quat(peg[3:]).inv()).magnitude()))
    return float(info["symmetries"][k])


def turned_goal(info: dict, goal: np.ndarray, hole: np.ndarray, angle: float) -> np.ndarray:
    """The inserted peg pose `goal` (7,) turned by `angle` [rad] about the axis of the `hole` (7,)
    through the section's centroid (info["centroid"], peg frame): the goal at another fitting turn
    when `angle` is one of info["symmetries"]."""
    axis = z_axis(hole[3:])
    centre = compose(goal, pose(info.get("centroid", [0.0, 0.0, 0.0])))[:3]
    turn = Rotation.from_rotvec(angle * axis)
    return np.concatenate([centre + turn.apply(goal[:3] - centre), (turn * Rotation.from_quat(goal[3:])).as_quat()])
