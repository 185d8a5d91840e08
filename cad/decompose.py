"""Exact convex decomposition of 2D regions, for simulator collision geometry.

MuJoCo and PyBullet collide each mesh as its convex hull, so a non-convex part must be given as
convex pieces. Our parts are extrusions of 2D regions, which makes an exact decomposition
possible: triangulate the region (constrained Delaunay, no new vertices), then greedily remove
diagonals while the merged piece stays convex (Hertel-Mehlhorn, at most 4x the optimal count).
The pieces tile the region: same area, no overlap, no piece outside it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry import Polygon

from cad.exceptions import DecompositionError
from cad.profile import polygons

AREA_TOLERANCE = 1e-6
"""Largest relative area difference between a region and the union of its pieces."""


class DecompositionReport(NamedTuple):
    """How exactly a set of pieces tiles a region (areas in m^2)."""

    region_area: float
    pieces_area: float  # sum of piece areas
    union_error: float  # area of the symmetric difference between region and union
    max_hull_excess: float  # largest (hull area - piece area) / piece area


def convex_decompose(region) -> list[Polygon]:
    """Split a Polygon or MultiPolygon (holes allowed) into convex polygons that tile it exactly.

    Args:
        region: shapely Polygon or MultiPolygon [m].

    Returns:
        Convex polygons (counter-clockwise, no holes) whose union is `region`.
    """
    pieces: list[Polygon] = []
    for poly in polygons(region):
        pieces.extend(_decompose_polygon(poly))
    return pieces


def check_decomposition(region, pieces: list[Polygon], tolerance: float = AREA_TOLERANCE) -> DecompositionReport:
    """Verify that convex `pieces` tile `region`; raise DecompositionError if not."""
    area = region.area
    pieces_area = float(sum(p.area for p in pieces))
    union = shapely.union_all(pieces)
    union_error = float(shapely.symmetric_difference(union, region).area)
    excess = max(((p.convex_hull.area - p.area) / p.area for p in pieces), default=0.0)
    report = DecompositionReport(area, pieces_area, union_error, excess)
    if abs(pieces_area - area) > tolerance * area or union_error > tolerance * area:
        raise DecompositionError(f"pieces do not tile the region: {report}")
    if excess > 1e-9:
        raise DecompositionError(f"a piece is not convex (hull excess {excess:.3g}): {report}")
    return report


def _decompose_polygon(poly: Polygon) -> list[Polygon]:
    tris = shapely.constrained_delaunay_triangles(poly)
    # Index vertices so that shared edges can be matched exactly.
    index: dict[tuple[float, float], int] = {}
    points: list[tuple[float, float]] = []
    cycles: dict[int, list[int]] = {}
    for tri in tris.geoms:
        if tri.area <= 0:
            continue
        tri = shapely.geometry.polygon.orient(tri)
        ids = []
        for xy in tri.exterior.coords[:-1]:
            key = (float(xy[0]), float(xy[1]))
            if key not in index:
                index[key] = len(points)
                points.append(key)
            ids.append(index[key])
        cycles[len(cycles)] = ids
    pts = np.asarray(points)

    owner: dict[tuple[int, int], int] = {}
    for pid, cyc in cycles.items():
        for a, b in zip(cyc, cyc[1:] + cyc[:1]):
            owner[(a, b)] = pid
    diagonals = {tuple(sorted(e)) for e in owner if (e[1], e[0]) in owner}
    # Longest diagonals first: removing them merges the largest pieces early.
    order = sorted(diagonals, key=lambda e: (-np.hypot(*(pts[e[0]] - pts[e[1]])), e))
    for u, v in order:
        p, q = owner.get((u, v)), owner.get((v, u))
        if p is None or q is None or p == q:
            continue
        merged = _merge(cycles[p], cycles[q], u, v)
        if not _convex_at(pts, merged, (u, v)):
            continue
        cycles[p] = merged
        del cycles[q]
        del owner[(u, v)], owner[(v, u)]
        for a, b in zip(merged, merged[1:] + merged[:1]):
            owner[(a, b)] = p
    return [Polygon(pts[_drop_collinear(pts, cyc)]) for cyc in cycles.values()]


def _merge(a: list[int], b: list[int], u: int, v: int) -> list[int]:
    """Join two CCW cycles sharing edge u->v (in `a`) / v->u (in `b`)."""
    i = a.index(v)
    a_rot = a[i:] + a[:i]  # v ... u
    j = b.index(u)
    b_rot = b[j:] + b[:j]  # u ... v
    return a_rot + b_rot[1:-1]


def _convex_at(pts: np.ndarray, cyc: list[int], vertices: tuple[int, int]) -> bool:
    n = len(cyc)
    for vid in vertices:
        k = cyc.index(vid)
        p0, p1, p2 = pts[cyc[k - 1]], pts[vid], pts[cyc[(k + 1) % n]]
        e1, e2 = p1 - p0, p2 - p1
        cross = e1[0] * e2[1] - e1[1] * e2[0]
        if cross < -1e-12 * math.hypot(*e1) * math.hypot(*e2):
            return False
    return True


def _drop_collinear(pts: np.ndarray, cyc: list[int]) -> list[int]:
    keep = []
    n = len(cyc)
    for k in range(n):
        p0, p1, p2 = pts[cyc[k - 1]], pts[cyc[k]], pts[cyc[(k + 1) % n]]
        e1, e2 = p1 - p0, p2 - p1
        if abs(e1[0] * e2[1] - e1[1] * e2[0]) > 1e-12 * math.hypot(*e1) * math.hypot(*e2):
            keep.append(cyc[k])
    return keep
