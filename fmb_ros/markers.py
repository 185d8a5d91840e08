"""RViz markers of a skill: the goal, the commanded target, the workspace box, candidate action paths
and the GravMap of the current sub-goal.

All in the base frame [m]. Namespaces: "goal" (green arrow along the pose's x axis), "command" (blue
arrow), "workspace" (grey box edges), "candidates" (one line strip per sampled action chunk, the
executed one opaque, coloured by score from red (low) to green (high) when scores are given; a
candidate the safety filter dropped, score NaN, is drawn red and faint), "subgoal" (a 2 cm sphere at
the current GravMap sub-goal, green when the gripper is to be open, red when closed, its name as the
marker's text), "gravmap" (one CUBE_LIST of the cost-map voxels around the sub-goal whose cost is
below a threshold, green at cost 0 to red at the threshold).
"""

from __future__ import annotations

import itertools

import numpy as np
from geometry_msgs.msg import Point, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from fmb_ros import convert


def _marker(ns: str, kind: int, frame: str, seconds: float, rgba, scale, mid: int = 0) -> Marker:
    m = Marker(header=convert.header(frame, seconds), ns=ns, id=mid, type=kind, action=Marker.ADD)
    m.pose.orientation.w = 1.0
    m.scale = Vector3(x=float(scale[0]), y=float(scale[1]), z=float(scale[2]))
    m.color = ColorRGBA(r=float(rgba[0]), g=float(rgba[1]), b=float(rgba[2]), a=float(rgba[3]))
    return m


def _point(p) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def pose_arrow(ns: str, pose, frame: str, seconds: float, rgba) -> Marker:
    """An arrow at `pose` (7,) [m, xyzw] along its x axis, 5 cm long."""
    m = _marker(ns, Marker.ARROW, frame, seconds, rgba, (0.05, 0.008, 0.008))
    m.pose = convert.pose_msg(pose)
    return m


def workspace_box(low, high, frame: str, seconds: float) -> Marker:
    """The 12 edges of the box [low, high] (3,) [m]."""
    m = _marker("workspace", Marker.LINE_LIST, frame, seconds, (0.6, 0.6, 0.6, 0.8), (0.003, 0.0, 0.0))
    corners = list(itertools.product(*zip(low, high)))
    for a, b in itertools.combinations(corners, 2):
        if sum(x != y for x, y in zip(a, b)) == 1:  # differ along one axis: an edge
            m.points += [_point(a), _point(b)]
    return m


def candidate_paths(chunks, tcp, frame: str, seconds: float, chosen: int = 0, scores=None) -> list[Marker]:
    """Line strips of candidate action chunks from the TCP position.

    Args:
        chunks: (N, T, 7) delta actions (translation [m] first), as a policy samples them.
        tcp: (7,) TCP pose when they were sampled.
        chosen: index of the executed candidate (drawn opaque).
        scores: (N,) scores (higher is better) or None.
    """
    chunks = np.asarray(chunks, float)
    if chunks.ndim != 3 or chunks.shape[2] < 3:
        raise ValueError(f"chunks must be (N, T, >=3), got {chunks.shape}")
    if scores is not None:
        s = np.asarray(scores, float)
        finite = np.isfinite(s)
        quality = np.zeros(len(s))
        if finite.any():
            span = float(np.ptp(s[finite])) or 1.0
            quality[finite] = (s[finite] - s[finite].min()) / span
    markers = []
    for i, chunk in enumerate(chunks):
        path = np.asarray(tcp, float)[:3] + np.vstack([np.zeros(3), np.cumsum(chunk[:, :3], axis=0)])
        q = 0.5 if scores is None else float(quality[i])
        dropped = scores is not None and not finite[i]
        rgba = (1.0 - q, q, 0.2, 1.0 if i == chosen else (0.12 if dropped else 0.35))
        m = _marker("candidates", Marker.LINE_STRIP, frame, seconds, rgba, (0.002 if i != chosen else 0.004, 0, 0), i)
        m.points = [_point(p) for p in path]
        markers.append(m)
    return markers


def gravmap_markers(subgoal, frame: str, seconds: float, spec=None, threshold: float = 0.5) -> list[Marker]:
    """The sub-goal sphere and the GravMap cost voxels around it.

    Args:
        subgoal: a `policies.gravmap.subgoals.Subgoal` (position (3,) [m], openness in [0, 1], name).
        spec: the map's `policies.gravmap.maps.GravMapSpec` (a GravMap policy's own; default spec
            when None). The grid is centred on the sub-goal, so the low-cost cells are in view
            wherever the TCP is.
        threshold: voxels with cost below it are drawn (cost is 1/2 at distance rho from the sub-goal).
    """
    from policies.gravmap.maps import GravMapSpec, build_gravmap

    spec = GravMapSpec() if spec is None else spec
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    position = np.asarray(subgoal.position, float)
    openness = float(np.clip(subgoal.openness, 0.0, 1.0))
    sphere = _marker("subgoal", Marker.SPHERE, frame, seconds, (1.0 - openness, openness, 0.1, 0.9), (0.02,) * 3)
    sphere.pose.position = _point(position)
    sphere.text = str(subgoal.name)
    gmap = build_gravmap(position, openness, position, spec)
    cell = 2.0 * spec.extent / spec.grid
    cubes = _marker("gravmap", Marker.CUBE_LIST, frame, seconds, (1.0, 1.0, 1.0, 0.35), (cell,) * 3)
    near = gmap.cost < threshold
    for p, c in zip(gmap.points[near], gmap.cost[near]):
        q = float(c) / threshold  # 0 at the sub-goal, 1 at the threshold
        cubes.points.append(_point(p))
        cubes.colors.append(ColorRGBA(r=q, g=1.0 - q, b=0.1, a=0.35))
    return [sphere, cubes]


def skill_markers(
    goal, command, low, high, frame: str, seconds: float, candidates=None, subgoal=None, gravmap_spec=None
) -> MarkerArray:
    """Every marker of a skill for one tick (missing parts are left out).

    Args:
        goal, command: (7,) poses or None.
        low, high: workspace corners (3,) [m].
        candidates: (chunks, tcp, chosen, scores) as `candidate_paths` takes them, or None.
        subgoal, gravmap_spec: the current GravMap sub-goal and map spec (`gravmap_markers`), or None.
    """
    out = MarkerArray()
    clear = Marker(action=Marker.DELETEALL)
    clear.ns = "candidates"
    out.markers.append(clear)
    out.markers.append(workspace_box(low, high, frame, seconds))
    if goal is not None:
        out.markers.append(pose_arrow("goal", goal, frame, seconds, (0.1, 0.9, 0.1, 1.0)))
    if command is not None:
        out.markers.append(pose_arrow("command", command, frame, seconds, (0.1, 0.3, 1.0, 1.0)))
    if candidates is not None:
        chunks, tcp, chosen, scores = candidates
        out.markers.extend(candidate_paths(chunks, tcp, frame, seconds, chosen, scores))
    if subgoal is not None:
        out.markers.extend(gravmap_markers(subgoal, frame, seconds, gravmap_spec))
    return out
