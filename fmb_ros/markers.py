"""RViz markers of a skill: the goal, the commanded target, the workspace box and candidate action paths.

All in the base frame [m]. Namespaces: "goal" (green arrow along the pose's x axis), "command" (blue
arrow), "workspace" (grey box edges), "candidates" (one line strip per sampled action chunk, the
executed one opaque, coloured by score from red (low) to green (high) when scores are given).
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
        span = float(np.ptp(s)) or 1.0
        quality = (s - s.min()) / span
    markers = []
    for i, chunk in enumerate(chunks):
        path = np.asarray(tcp, float)[:3] + np.vstack([np.zeros(3), np.cumsum(chunk[:, :3], axis=0)])
        q = 0.5 if scores is None else float(quality[i])
        rgba = (1.0 - q, q, 0.2, 1.0 if i == chosen else 0.35)
        m = _marker("candidates", Marker.LINE_STRIP, frame, seconds, rgba, (0.002 if i != chosen else 0.004, 0, 0), i)
        m.points = [_point(p) for p in path]
        markers.append(m)
    return markers


def skill_markers(goal, command, low, high, frame: str, seconds: float, candidates=None) -> MarkerArray:
    """Every marker of a skill for one tick (missing parts are left out).

    Args:
        goal, command: (7,) poses or None.
        low, high: workspace corners (3,) [m].
        candidates: (chunks, tcp, chosen, scores) as `candidate_paths` takes them, or None.
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
    return out
