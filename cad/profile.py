"""Operations on 2D profiles (shapely polygons in metres, in the part's x-y plane).

Profiles are closed regions, counter-clockwise exteriors, centred on their bounding box.
Curves are polygonised with a chord error of at most :data:`CHORD_TOLERANCE`, so a round
peg printed from our STL deviates from a true circle by less than a printer's resolution.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from cad.units import mm

CHORD_TOLERANCE = mm(0.05)
"""Largest distance between a polygonised arc and the true arc [m]: 1/8 of a 0.4 mm nozzle,
below what a printer resolves, and coarse enough to keep exact collision pieces few."""


def quad_segs_for(radius: float, tolerance: float = CHORD_TOLERANCE) -> int:
    """Segments per quarter circle so that a chord of an arc of `radius` [m] errs < `tolerance`."""
    if radius <= tolerance:
        return 2
    step = 2.0 * math.acos(1.0 - tolerance / radius)  # [rad] per segment
    return max(2, math.ceil((math.pi / 2) / step))


def circle(radius: float, center=(0.0, 0.0)) -> Polygon:
    """Polygonised circle of `radius` [m] (vertices on the circle)."""
    return orient(shapely.Point(center).buffer(radius, quad_segs=quad_segs_for(radius)))


def centre_on_bbox(poly):
    """Translate a geometry so that its bounding box is centred on the origin."""
    x0, y0, x1, y1 = poly.bounds
    return affinity.translate(poly, -(x0 + x1) / 2, -(y0 + y1) / 2)


def fit_to_box(poly, width: float, depth: float):
    """Scale a geometry independently in x and y so that its bounding box is width x depth [m],
    centred on the origin."""
    x0, y0, x1, y1 = poly.bounds
    scaled = affinity.scale(poly, width / (x1 - x0), depth / (y1 - y0), origin=(0, 0))
    return centre_on_bbox(scaled)


def round_corners(poly, convex_radius: float, concave_radius: float):
    """Fillet convex corners with `convex_radius` and concave corners with `concave_radius` [m].

    Implemented as a morphological opening then closing, which leaves straight edges and arcs
    larger than the radii untouched.
    """
    out = poly
    if convex_radius > 0:
        q = quad_segs_for(convex_radius)
        out = out.buffer(-convex_radius, quad_segs=q).buffer(convex_radius, quad_segs=q)
    if concave_radius > 0:
        q = quad_segs_for(concave_radius)
        out = out.buffer(concave_radius, quad_segs=q).buffer(-concave_radius, quad_segs=q)
    return normalise(out)


def offset(poly, distance: float):
    """Offset a region outward (`distance` > 0) or inward (< 0) by `distance` [m].

    Outward offsets are exact lower bounds: the round joins are polygonised with vertices on a
    circle of radius distance / cos(half step), so every point of the new boundary lies at least
    `distance` from the original region (a hole offset by the clearance never eats into it) and
    at most `distance` + CHORD_TOLERANCE from it.
    """
    if distance == 0:
        return poly
    q = quad_segs_for(abs(distance))
    if distance > 0:
        half_step = math.pi / (4 * q)
        distance = distance / math.cos(half_step)
    return normalise(poly.buffer(distance, quad_segs=q, join_style="round"))


def normalise(geom):
    """Return a valid, oriented Polygon or MultiPolygon without empty or zero-area parts."""
    geom = shapely.make_valid(geom)
    parts = geom.geoms if hasattr(geom, "geoms") else [geom]
    polys = [orient(shapely.remove_repeated_points(g, 1e-9)) for g in parts if isinstance(g, Polygon) and g.area > 0]
    if len(polys) == 1:
        return polys[0]
    return MultiPolygon(polys)


def polygons(geom) -> list[Polygon]:
    """The polygons of a Polygon or MultiPolygon, as a list."""
    if isinstance(geom, Polygon):
        return [] if geom.is_empty else [geom]
    return [g for g in geom.geoms if isinstance(g, Polygon) and not g.is_empty]


def regular_polygon(n: int, radius: float, phase: float = math.pi / 2) -> Polygon:
    """Regular n-gon with circumradius `radius` [m]; first vertex at angle `phase` [rad]."""
    a = phase + 2 * math.pi * np.arange(n) / n
    return Polygon(np.c_[radius * np.cos(a), radius * np.sin(a)])


def rotate(poly, angle: float):
    """Rotate a geometry by `angle` [rad] about the origin."""
    return affinity.rotate(poly, angle, origin=(0, 0), use_radians=True)


def translate(poly, dx: float, dy: float):
    """Translate a geometry by (dx, dy) [m]."""
    return affinity.translate(poly, dx, dy)
