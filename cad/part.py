"""A part as a stack of extruded 2D regions, and its triangle mesh.

Every FMB object is a union of *slabs*: a 2D region (holes allowed) extruded between two
heights. Chamfers are slabs too, one per printed layer height, which is how a slicer sees them.
The same description gives the print mesh (manifold3d booleans, watertight by construction) and
the exact convex collision pieces (one convex prism per piece of each slab's region).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import manifold3d
import numpy as np
import trimesh
from shapely.geometry import Polygon

from cad.decompose import convex_decompose
from cad.profile import polygons


@dataclasses.dataclass(frozen=True)
class Slab:
    """A 2D region extruded along +z.

    Attributes:
        region: shapely Polygon or MultiPolygon in the part frame [m].
        z_min, z_max: bottom and top of the slab in the part frame [m].
    """

    region: object
    z_min: float
    z_max: float


class Frame(NamedTuple):
    """A named pose in the part frame.

    Attributes:
        position: (3,) float [m].
        quaternion: (4,) float, xyzw.
    """

    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


class CollisionPiece(NamedTuple):
    """A convex prism: a convex polygon extruded from z_min to z_max [m].

    Attributes:
        polygon: (k, 2) float, counter-clockwise vertices [m].
        z_min, z_max: extent along z [m].
    """

    polygon: np.ndarray
    z_min: float
    z_max: float

    def vertices(self) -> np.ndarray:
        """(2k, 3) float prism vertices [m]: bottom ring then top ring."""
        k = len(self.polygon)
        bottom = np.c_[self.polygon, np.full(k, self.z_min)]
        top = np.c_[self.polygon, np.full(k, self.z_max)]
        return np.vstack([bottom, top])


@dataclasses.dataclass(frozen=True)
class Part:
    """A printable object.

    Attributes:
        name: unique name, used as file stem (e.g. "peg_star_M_long").
        kind: "peg", "board", "fixture", "assembly_board" or "assembly_part".
        slabs: the print solid as extruded regions [m].
        collision_slabs: the simulator solid (chamfers in fewer steps) [m].
        params: JSON-ready parameters that rebuild the part (lengths in metres).
        colour: one of `cad.fmb_reference.COLOURS`.
        frames: named poses in the part frame (peg "tip", board "hole_<shape>", ...).
        keepout: where a received part sits (a board's pegs, an assembly part in its cavity)
            as a Slab [m]: no collision piece overlapping its z range may come closer to its
            region than the clearance. None for parts that receive nothing.
    """

    name: str
    kind: str
    slabs: tuple[Slab, ...]
    collision_slabs: tuple[Slab, ...]
    params: dict
    colour: str
    frames: dict[str, Frame] = dataclasses.field(default_factory=dict)
    keepout: Slab | None = None

    @property
    def height(self) -> float:
        """Extent along z [m]."""
        return max(s.z_max for s in self.slabs)

    def mesh(self) -> trimesh.Trimesh:
        """Watertight triangle mesh of the print solid [m] (a copy: callers may scale it)."""
        return self._mesh.copy()

    def collision_pieces(self) -> list[CollisionPiece]:
        """Exact convex prisms whose union is the collision solid [m]."""
        return list(self._pieces)

    # Built once per part: checks, file export and simulator assets all ask for them.
    @functools.cached_property
    def _mesh(self) -> trimesh.Trimesh:
        return slabs_to_mesh(self.slabs)

    @functools.cached_property
    def _pieces(self) -> tuple[CollisionPiece, ...]:
        return tuple(slabs_to_pieces(self.collision_slabs))


def stepped_slabs(
    region_at: Callable[[float], object], z_start: float, height: float, step: float
) -> list[Slab]:
    """Slabs approximating a chamfer by one slab per `step` of height.

    Args:
        region_at: fraction in [0, 1] along the chamfer -> region at that height.
        z_start: where the chamfer starts [m].
        height: chamfer height [m]; zero gives no slab.
        step: slab thickness [m], a printer's layer height.
    """
    if height <= 0:
        return []
    n = max(1, int(round(height / step)))
    dz = height / n
    return [Slab(region_at((k + 0.5) / n), z_start + k * dz, z_start + (k + 1) * dz) for k in range(n)]


_KERNEL_SCALE = 1e3
"""manifold3d's 2D kernel (Clipper2) rounds to 1e-8 units: work in mm inside it (10 pm steps)."""


def slabs_to_mesh(slabs: tuple[Slab, ...] | list[Slab]) -> trimesh.Trimesh:
    """Union of the extruded slabs as a watertight trimesh [m]."""
    k = _KERNEL_SCALE
    solids = []
    for slab in slabs:
        contours = []
        for poly in polygons(slab.region):
            contours.append(np.asarray(poly.exterior.coords)[:-1] * k)
            contours.extend(np.asarray(r.coords)[:-1] * k for r in poly.interiors)
        section = manifold3d.CrossSection(contours, manifold3d.FillRule.EvenOdd)
        solids.append(section.extrude(1.0).warp_batch(_z_between(slab.z_min * k, slab.z_max * k)))
    union = manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add)
    out = union.to_mesh64() if hasattr(union, "to_mesh64") else union.to_mesh()
    vertices = np.asarray(out.vert_properties, dtype=np.float64)[:, :3] / k
    faces = np.asarray(out.tri_verts, dtype=np.int64)
    # manifold3d returns an indexed, manifold mesh: no vertex merging (it would join
    # vertices closer than trimesh's 1e-8 tolerance and break the topology).
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def _z_between(z_bottom: float, z_top: float) -> Callable[[np.ndarray], np.ndarray]:
    """Vertex map of a unit extrusion onto [z_bottom, z_top] [mm], hitting both ends exactly.

    `extrude(h).translate(z0)` puts the top at z0 + (z1 - z0), which can miss z1 by an ulp: the
    slab above then floats 1e-14 mm higher, manifold3d keeps the two as separate shells, and an
    STL (which merges coincident vertices on load) gets edges shared by four faces.
    """

    def warp(vertices: np.ndarray) -> np.ndarray:
        out = np.array(vertices, dtype=np.float64)  # (n, 3)
        out[:, 2] = np.where(out[:, 2] > 0.5, z_top, z_bottom)
        return out

    return warp


def slabs_to_pieces(slabs: tuple[Slab, ...] | list[Slab]) -> list[CollisionPiece]:
    """Exact convex prisms of every slab, in slab order."""
    pieces = []
    for slab in slabs:
        for poly in convex_decompose(slab.region):
            ring = np.asarray(poly.exterior.coords)[:-1]
            pieces.append(CollisionPiece(ring, slab.z_min, slab.z_max))
    return pieces


def region_of(slab: Slab) -> list[Polygon]:
    """The polygons of a slab's region."""
    return polygons(slab.region)
