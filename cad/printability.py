"""Print-readiness checks. A part that fails one is an error, not a warning.

Checks on the mesh: watertight, consistent winding, positive volume, flat base on z = 0, and one
manifold shell as a print file stores it (vertices in float32 millimetres, coincident ones merged as
slicers and mesh tools do on loading): every edge shared by exactly two faces, one connected body.
Checks on every slab region (the exact 2D geometry the mesh is made from):
    - wall thickness: every two boundaries of a region (outline and holes, or two holes) are at
      least `min_wall` apart, so holes never come closer than a printable wall;
    - feature size: a morphological opening with radius min_feature / 2 removes no more than
      corner slivers, so no neck, prong or tip is thinner than `min_feature`.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import shapely
import trimesh

from cad.exceptions import PrintabilityError
from cad.part import Part
from cad.profile import polygons, quad_segs_for
from cad.units import mm
from fmb_core.errors import check_length_mm


@dataclasses.dataclass(frozen=True)
class PrintLimits:
    """What a desktop FDM printer (0.4 mm nozzle) prints reliably.

    Attributes:
        min_wall: thinnest wall between two boundaries of a region [m] (three 0.4 mm lines).
        min_feature: thinnest neck, prong or tip [m].
        base_tolerance: how far the lowest vertex may be from z = 0 [m].
    """

    min_wall: float = mm(1.2)
    min_feature: float = mm(1.2)
    base_tolerance: float = 1e-9

    def __post_init__(self):
        check_length_mm("min_wall", self.min_wall, 0.0, mm(20.0))
        check_length_mm("min_feature", self.min_feature, 0.0, mm(20.0))


class PrintReport(NamedTuple):
    """Result of the checks on one part (lengths in m, volume in m^3)."""

    name: str
    volume: float
    thinnest_wall: float  # inf when no region has two boundaries
    watertight: bool


def check_part(part: Part, limits: PrintLimits = PrintLimits()) -> PrintReport:
    """Run every check on `part`; raise PrintabilityError naming the part and the failed check."""
    mesh = part.mesh()
    name = part.name
    if not mesh.is_watertight:
        raise PrintabilityError(f"{name}: mesh is not watertight")
    if not mesh.is_winding_consistent:
        raise PrintabilityError(f"{name}: mesh winding is inconsistent")
    if not mesh.volume > 0:
        raise PrintabilityError(f"{name}: mesh volume {mesh.volume:.3g} m^3 is not positive")
    bad_edges, shells = shell_defects(mesh)
    if bad_edges:
        raise PrintabilityError(
            f"{name}: {bad_edges} edges are not shared by exactly two faces in the print file (non-manifold)"
        )
    if shells != 1:
        raise PrintabilityError(f"{name}: the print file holds {shells} shells, expected one body")
    z_min = float(mesh.bounds[0, 2])
    if abs(z_min) > limits.base_tolerance:
        raise PrintabilityError(f"{name}: base is at z={z_min * 1e3:.4g} mm, must be on z=0")
    thinnest = float("inf")
    for slab in part.slabs:
        thinnest = min(thinnest, check_walls(slab.region, limits.min_wall, name, slab.z_min))
        check_features(slab.region, limits.min_feature, name, slab.z_min)
    return PrintReport(name, float(mesh.volume), thinnest, True)


def shell_defects(mesh: trimesh.Trimesh) -> tuple[int, int]:
    """(edges not shared by exactly two faces, shells) of `mesh` [m] as written to STL/3MF.

    The files hold float32 millimetres and carry no vertex indices (STL) or ones a loader may merge,
    so vertices equal after that rounding are one vertex here. A mesh whose parts only touch (two
    shells closed on their own, glued at a face) passes `is_watertight` on its own indices but not
    this check.
    """
    stored = np.ascontiguousarray(mesh.vertices * 1e3 + 0.0, dtype=np.float32)  # (n, 3) in the file [mm], no -0
    _, index = np.unique(stored.view(np.dtype((np.void, 12))).reshape(-1), return_inverse=True)
    faces = index.reshape(-1)[np.asarray(mesh.faces)]  # (m, 3) merged vertex ids
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)  # (3m, 2)
    keys = edges[:, 0] * (len(stored) + 1) + edges[:, 1]
    _, edge_id, counts = np.unique(keys, return_inverse=True, return_counts=True)
    bad = int(np.count_nonzero(counts != 2))
    # Shells: faces joined across edges that two faces share, as admesh counts them.
    order = np.argsort(edge_id.reshape(-1), kind="stable")
    ids = edge_id.reshape(-1)[order]
    pair = np.flatnonzero((ids[:-1] == ids[1:]) & (counts[ids[:-1]] == 2))
    face_a, face_b = order[pair] // 3, order[pair + 1] // 3
    m = len(faces)
    graph = scipy.sparse.coo_matrix((np.ones(len(pair)), (face_a, face_b)), shape=(m, m))
    shells, _ = scipy.sparse.csgraph.connected_components(graph, directed=False)
    return bad, int(shells)


def check_walls(region, min_wall: float, name: str = "region", z: float = 0.0) -> float:
    """Thinnest wall between two boundaries of `region` [m]; PrintabilityError if < min_wall."""
    rings = []
    for poly in polygons(region):
        rings.append(("outline", poly.exterior))
        rings.extend((f"hole {i}", r) for i, r in enumerate(poly.interiors))
    thinnest = float("inf")
    for (na, a), (nb, b) in itertools.combinations(rings, 2):
        d = a.distance(b)
        thinnest = min(thinnest, d)
        if d < min_wall:
            pa, _ = shapely.ops.nearest_points(a, b)
            raise PrintabilityError(
                f"{name}: wall between {na} and {nb} is {d * 1e3:.3g} mm thick at "
                f"({pa.x * 1e3:.1f}, {pa.y * 1e3:.1f}, {z * 1e3:.1f}) mm; min_wall is {min_wall * 1e3:.3g} mm"
            )
    return thinnest


def check_features(region, min_feature: float, name: str = "region", z: float = 0.0) -> None:
    """PrintabilityError if `region` has a neck, prong or tip thinner than `min_feature`."""
    if min_feature <= 0:
        return
    r = min_feature / 2
    q = quad_segs_for(r)
    opened = region.buffer(-r, quad_segs=q).buffer(r, quad_segs=q)
    lost = shapely.difference(region, opened)
    for piece in polygons(lost) if not lost.is_empty else []:
        if piece.area > r * r:
            c = piece.representative_point()
            raise PrintabilityError(
                f"{name}: feature thinner than min_feature={min_feature * 1e3:.3g} mm near "
                f"({c.x * 1e3:.1f}, {c.y * 1e3:.1f}, {z * 1e3:.1f}) mm"
            )
