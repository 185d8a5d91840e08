"""Grasp: pick a peg up from the table (FMB primitive "grasp").

Start: the peg stands on its tip (base up, ready to be inserted once grasped from above) or lies
on its side (even odds) at a random yaw, its centre
within a 20 x 25 cm area around (0.50, 0.00) m (FMB's range); the gripper is open, pointing
down, 25-35 cm above the table within +-5 cm of (0.45, 0.0) m.

Success: the peg is held (touching both fingers) and its lowest point (a vertex of its section's
convex hull at either end) is at least 50 mm above the table. Progress: 0.5 x closeness of the
TCP to the planned grasp point (0 beyond 20 cm) + 0.5 x lift (1 at 50 mm) once held.
Step limit: 70 (FMB).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from shapely.geometry import LineString, MultiPoint
from shapely.geometry.polygon import orient

from cad.fmb_reference import LENGTHS
from sim import panda
from sim.objects import peg_part
from sim.scene import SceneObject
from sim.spatial import compose, inverse, pose, quat_from_euler, quat_from_matrix
from sim.tasks.base import EpisodeStart, Evaluation, Task, WorldView, peg_facts, register_task
from sim.tasks.geometry import TCP_DOWN, comfortable_grasp, held_peg_in_tcp

AREA_CENTRE = np.array([0.50, 0.0])
AREA_HALF = np.array([0.10, 0.125])  # [m], FMB: 20 x 25 cm
SUCCESS_LIFT = 0.05
STANDING_GRASP_DEPTH = 0.025  # [m] below the top face of a standing peg
LYING_GRASP_AT = 0.3  # a lying peg is grasped this fraction of its length from its base
PALM_CLEARANCE = 0.042  # [m] the palm is ~46 mm above the TCP: keep 4 mm between it and the peg


def lying_pose(section, length: float, xy, yaw: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Pose of a peg lying on the longest edge of its section's convex hull.

    Returns:
        (peg pose (7,), height of the peg's axis above the table [m], the resting edge's outward
        normal (2,) in the section plane).
    """
    hull = np.asarray(orient(MultiPoint(list(section.exterior.coords)).convex_hull).exterior.coords)[:-1]
    edges = np.roll(hull, -1, axis=0) - hull
    k = int(np.argmax(np.linalg.norm(edges, axis=1)))
    t = edges[k] / np.linalg.norm(edges[k])
    n = np.array([t[1], -t[0]])  # outward normal of a counter-clockwise hull edge
    support = float(hull[k] @ n)  # distance of the edge's line from the axis
    axis = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    # Columns: where the peg's x, y, z axes go. n (in the section plane) points down; z -> axis.
    down = np.array([0.0, 0.0, -1.0])
    ex, ey = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    e1 = np.cross(axis, down)  # world image of the in-plane direction perpendicular to n
    # Peg-frame in-plane unit vectors: n and m = z x n; map n -> down, m -> axis x down.
    m = np.array([-n[1], n[0]])
    world_x = (ex @ n) * down + (ex @ m) * e1
    world_y = (ey @ n) * down + (ey @ m) * e1
    rot = np.stack([world_x, world_y, axis], axis=1)
    origin = np.array([xy[0], xy[1], support]) - 0.5 * length * axis
    return np.concatenate([origin, quat_from_matrix(rot)]), support, n


@register_task
class GraspTask(Task):
    """See module docstring."""

    name = "grasp"
    max_steps = 70

    def start(self, rng: np.random.Generator) -> EpisodeStart:
        spec = self.pool.draw(rng)
        xy = AREA_CENTRE + rng.uniform(-1, 1, 2) * AREA_HALF
        yaw = rng.uniform(-np.pi, np.pi)
        standing = bool(rng.uniform() < 0.5)
        peg_pose = resting_pose(spec, xy, yaw, standing)
        return EpisodeStart(
            [SceneObject("peg", peg_part(spec))],
            {"peg": peg_pose},
            start_above_table(rng),
            panda.GRIPPER_OPEN,
            False,
            grasp_info(spec, peg_pose, standing),
        )

    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        peg = world.object_pose("peg")
        start_pose = np.asarray(start.info["targets"]["peg_start"])
        lift = lowest_point(peg, start.info["section_hull"], LENGTHS[start.info["length"]])
        held = world.touching("peg", "left_finger") and world.touching("peg", "right_finger")
        success = held and lift >= SUCCESS_LIFT
        grasp = np.asarray(start.info["targets"]["grasp"])
        reach = 1 - min(1.0, float(np.linalg.norm(world.tcp_pose()[:3] - grasp[:3] - (peg[:3] - start_pose[:3]))) / 0.2)
        progress = 1.0 if success else 0.5 * reach + (0.5 * float(np.clip(lift / SUCCESS_LIFT, 0, 1)) if held else 0.0)
        return Evaluation(success, min(1.0, progress), False, {"lift": lift, "held": float(held)})


def lying_grasp(spec) -> tuple[np.ndarray, float]:
    """(TCP pose (7,) in the peg frame, finger opening [m]) for a top grasp of the peg lying as
    `lying_pose` lays it: across its axis, at the widest band, 30 % of its length from the base."""
    section, length = spec.section(), spec.length_m
    _, support, n = lying_pose(section, length, (0.0, 0.0), 0.0)
    m = np.array([-n[1], n[0]])
    tcp_height = lying_grasp_height(section, n, support)
    # TCP: z down (= n in the peg frame), y across the axis (= m), x = y cross z.
    y_axis, z_axis_ = np.array([m[0], m[1], 0.0]), np.array([n[0], n[1], 0.0])
    rot = np.stack([np.cross(y_axis, z_axis_), y_axis, z_axis_], axis=1)
    offset = (tcp_height - support) * -np.array([n[0], n[1], 0.0])
    # Off centre, nearer the base: stood up tip-down in the fixture, the fingers then stay well
    # above the fixture's walls.
    grasp_in_peg = pose(offset + [0.0, 0.0, LYING_GRASP_AT * length], quat_from_matrix(rot))
    # Finger opening: the section's width where the pads close (TCP height + 5 mm), so a peg
    # spawned in the hand is touched by both fingers from the first step.
    level = support - (tcp_height + 0.005)
    cut = section.intersection(LineString([level * n - m, level * n + m]))
    if cut.is_empty:
        extent = np.asarray(section.exterior.coords) @ m
        return grasp_in_peg, float(extent.max() - extent.min())
    ends = np.asarray([c for g in getattr(cut, "geoms", [cut]) for c in g.coords]) @ m
    return grasp_in_peg, float(ends.max() - ends.min())


FINGER_PAD = 0.02  # [m] width of a Panda fingertip pad along the section's x axis


def section_width(section, x: float) -> float:
    """Extent [m] of the section along its y axis (the fingers' closing axis) at `x` [m]."""
    cut = section.intersection(LineString([(x, -1.0), (x, 1.0)]))
    if cut.is_empty:
        return 0.0
    ys = np.asarray([c for g in getattr(cut, "geoms", [cut]) for c in g.coords])[:, 1]
    return float(ys.max() - ys.min())


def standing_grasp_x(section, pad: float = FINGER_PAD) -> float:
    """Offset [m] along the section's x axis of a grasp closing along its y axis.

    Normally 0 (the peg's axis). But where the pads, centred on the axis, would close on a neck
    with the faces that stop them all on one side of it (a square-circle: the square's edge
    on one side, the circle on the other, nothing at the axis), the peg pivots about the
    fingers and swings. Then the grasp moves along x to where the most of the pads' width meets
    flat faces (within 0.5 mm of the widest point under them), the nearest such place to the axis.
    """

    def contact(centre: float) -> tuple[float, np.ndarray]:
        xs = np.linspace(centre - pad / 2, centre + pad / 2, 21)
        widths = np.array([section_width(section, x) for x in xs])
        flat = widths >= widths.max() - 0.0005
        return float(flat.mean()), xs[flat] - centre

    _, touching = contact(0.0)
    if touching.min() < -0.001 and touching.max() > 0.001 or np.any(np.abs(touching) <= 0.001):
        return 0.0  # stopped on both sides of the axis (or at it): the peg cannot pivot
    low, high = section.bounds[0] + pad / 2, section.bounds[2] - pad / 2
    best = (-1.0, 0.0)
    for centre in sorted(np.linspace(low, high, 41), key=abs):
        fraction, _ = contact(centre)
        if fraction > best[0] + 1e-9:
            best = (fraction, float(centre))
    return best[1]


def standing_grasp_in_peg(spec) -> np.ndarray:
    """(7,) TCP pose in the peg frame for the grasp of a standing (tip-down) peg: STANDING_GRASP_DEPTH
    below its base, fingers closing along the section's y axis, at `standing_grasp_x` along x."""
    grasp = held_peg_in_tcp_inverse(STANDING_GRASP_DEPTH)
    grasp[0] = standing_grasp_x(spec.section())
    return grasp


def held_peg_in_tcp_inverse(grasp_offset: float) -> np.ndarray:
    """TCP pose in the peg frame for the insertion grasp `grasp_offset` [m] below the base."""
    return inverse(held_peg_in_tcp(grasp_offset))


def resting_pose(spec, xy, yaw: float, standing: bool) -> np.ndarray:
    """(7,) pose of a peg resting on the table at `xy` [m]: standing on its tip (base up) turned by
    `yaw` [rad], or lying on its side with its axis along `yaw`."""
    if standing:
        return pose([xy[0], xy[1], spec.length_m], quat_from_euler(np.pi, 0.0, yaw))
    return lying_pose(spec.section(), spec.length_m, xy, yaw)[0]


def start_above_table(rng: np.random.Generator, centre=(0.45, 0.0), heights=(0.25, 0.35)) -> np.ndarray:
    """(7,) TCP start: pointing down, at a height in `heights` [m], within +-5 cm of `centre` (x, y)
    [m], yaw +-0.5 rad."""
    return pose(
        [centre[0] + rng.uniform(-0.05, 0.05), centre[1] + rng.uniform(-0.05, 0.05), rng.uniform(*heights)],
        compose(pose([0, 0, 0], quat_from_euler(0, 0, rng.uniform(-0.5, 0.5))), pose([0, 0, 0], TCP_DOWN))[3:],
    )


def grasp_info(spec, peg_pose: np.ndarray, standing: bool) -> dict:
    """The grasp task's episode facts and targets for a peg resting at `peg_pose`."""
    section = spec.section()
    if standing:
        # Fingers close along the section's y axis (its narrower side for FMB's shapes).
        grasp_in_peg = standing_grasp_in_peg(spec)
        width = float(section.bounds[3] - section.bounds[1])
    else:
        grasp_in_peg, width = lying_grasp(spec)
    grasp = comfortable_grasp(compose(peg_pose, grasp_in_peg), pose([0, 0, 0]))
    return {
        **peg_facts(spec),
        "standing": standing,
        "section_hull": np.asarray(section.convex_hull.exterior.coords)[:-1].round(6).tolist(),
        "targets": {
            "grasp": grasp.tolist(),
            "grasp_in_peg": compose(inverse(peg_pose), grasp).tolist(),
            "peg_start": peg_pose.tolist(),
            "grasp_width": width,
        },
    }


def lowest_point(peg_pose: np.ndarray, section_hull, length: float) -> float:
    """Height [m] of the peg's lowest point: the lowest vertex of its section's convex hull at
    either end face (a prism's lowest point is always one of these)."""
    hull = np.asarray(section_hull, float)
    corners = np.concatenate([np.c_[hull, np.zeros(len(hull))], np.c_[hull, np.full(len(hull), length)]])
    return float(np.min(Rotation.from_quat(peg_pose[3:]).apply(corners)[:, 2] + peg_pose[2]))


def lying_grasp_height(section, n: np.ndarray, support: float) -> float:
    """TCP height [m] for grasping a peg lying with its section's direction `n` down.

    The fingers should close where the lying section is widest (vertical sides there, so the
    squeeze does not pop the peg out). The fingertips reach 7 mm past the TCP and their pads
    span ~20 mm above it, so the TCP goes 2 mm above the middle of the widest band, never lower
    than 10 mm above the table or PALM_CLEARANCE below the top, nor higher than 4 mm below the top.
    """
    m = np.array([-n[1], n[0]])
    coords = np.asarray(section.exterior.coords)
    top = float(np.max(support - coords @ n))
    heights = np.linspace(0.0005, top - 0.0005, 60)
    widths = []
    for h in heights:
        level = support - h  # the line p . n = level in the section plane
        a = level * n - m  # a long segment across the section at that level
        b = level * n + m
        cut = section.intersection(LineString([a, b]))
        widths.append(cut.length)
    widths = np.asarray(widths)
    band = heights[widths >= widths.max() - 1e-4]
    low = max(0.010, top - PALM_CLEARANCE)  # the palm must stay above the peg's top
    return float(np.clip(0.5 * (band.min() + band.max()) + 0.002, low, max(low, top - 0.004)))
