"""STEP export of a part, built as an exact B-rep from its slabs (millimetres at the file).

Each slab's region becomes a planar face (outer polygon with holes), extruded from z_min to z_max,
and the prisms are fused into one solid. Slabs that are stacked in z (pegs, boards: a body plus a
chamfer of thin steps) only touch at their shared planes, which lets OCCT's "glue" mode fuse them
about twice as fast. build123d is an optional dependency (`pip install .[step]`), imported here
only when needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cad.exceptions import CadError
from cad.part import Part, Slab
from cad.profile import polygons
from cad.units import to_mm
from fmb_core.errors import check_choice

STEP_SUFFIXES = (".step", ".stp")
"""File name endings `write_step` accepts."""

STEP_TIMESTAMP = "2000-01-01T00:00:00"
"""Header timestamp written to every file, so that the same part gives the same bytes."""

_MISSING = "STEP export needs build123d: pip install .[step]"


def write_step(part: Part, path: Path, validate: bool = True) -> Path:
    """Write the print solid of `part` to a STEP file, in millimetres.

    Faces are planar polygons, so the file leaves out p-curves (the 2D copies of each edge in its
    face's parameter space, which any reader rebuilds for planes): 40 % of the size and time.

    Args:
        part: the part; its `slabs` [m] define the solid.
        path: file to write, ending in .step or .stp; parent folders are created.
        validate: run OCCT's shape check on the solid first (about 1 s for a board).

    Returns:
        path.

    Raises:
        CadError: build123d is missing, the solid cannot be built, or the file cannot be written.
        ParameterError: `path` has another ending.
    """
    bd = require_build123d()
    path = Path(path)
    check_choice("STEP file ending", path.suffix.lower(), STEP_SUFFIXES)
    if path.is_dir():
        raise CadError(f"cannot write STEP file {str(path)!r}: it is a directory")
    solid = part_solid(part, validate=validate)
    solid.label = part.name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        bd.export_step(solid, os.fspath(path), write_pcurves=False, timestamp=STEP_TIMESTAMP)
    except (OSError, RuntimeError) as exc:
        raise CadError(f"cannot write STEP file {str(path)!r} for {part.name}: {exc}") from exc
    if not path.is_file():
        raise CadError(f"cannot write STEP file {str(path)!r} for {part.name}: nothing was written")
    return path


def part_solid(part: Part, validate: bool = True):
    """The print solid of `part` as a build123d Solid (or Compound if it has several bodies) [mm].

    Args:
        part: the part; its `slabs` [m] define the solid.
        validate: check the fused B-rep with OCCT's shape analysis.

    Raises:
        CadError: build123d is missing, or the fused solid is invalid or empty.
    """
    bd = require_build123d()
    slabs = _merge_identical(sorted(part.slabs, key=lambda s: (s.z_min, s.z_max)))
    prisms = [p for slab in slabs for p in _prisms(bd, slab)]
    if not prisms:
        raise CadError(f"{part.name} has no slab with a non-empty region; nothing to export")
    if len(prisms) == 1:
        solid = prisms[0]
    else:
        stacked = all(b.z_min >= a.z_max - 1e-12 for a, b in zip(slabs, slabs[1:]))
        # Skip build123d's face unification: it costs 0.5 s on a board and merges nothing on FMB parts.
        with bd.SkipClean():
            solid = prisms[0].fuse(*prisms[1:], glue=stacked)
    if solid.volume <= 0 or (validate and not solid.is_valid):
        raise CadError(f"the B-rep of {part.name} is invalid (volume {solid.volume:.6g} mm^3)")
    return solid


def step_volume(path: Path) -> float:
    """Volume of the solids in a STEP file [m^3] (the file is taken to be in millimetres).

    Raises:
        CadError: build123d is missing, or the file does not exist.
    """
    bd = require_build123d()
    path = Path(path)
    if not path.is_file():
        raise CadError(f"STEP file {str(path)!r} does not exist")
    return bd.import_step(os.fspath(path)).volume * 1e-9


def _prisms(bd, slab: Slab) -> list:
    """One extruded prism per polygon of the slab's region [mm]."""
    z0, height = to_mm(slab.z_min), to_mm(slab.z_max - slab.z_min)
    out = []
    for poly in polygons(slab.region):
        outer = _wire(bd, poly.exterior, z0)
        face = bd.Face(outer, [_wire(bd, ring, z0) for ring in poly.interiors])
        out.append(bd.Solid.extrude(face, (0.0, 0.0, height)))
    return out


def _wire(bd, ring, z: float):
    """Closed polygonal wire of a shapely ring [m] at height z [mm], in mm."""
    xy = to_mm(np.asarray(ring.coords)[:-1, :2])
    return bd.Wire.make_polygon([(float(x), float(y), z) for x, y in xy], close=True)


def _merge_identical(slabs: list[Slab]) -> list[Slab]:
    """Join touching consecutive slabs with the same region, so that no two walls are coplanar."""
    out: list[Slab] = []
    for slab in slabs:
        prev = out[-1] if out else None
        if prev and abs(slab.z_min - prev.z_max) < 1e-12 and slab.region.equals_exact(prev.region, 0.0):
            out[-1] = Slab(prev.region, prev.z_min, slab.z_max)
        else:
            out.append(slab)
    return out


def require_build123d():
    """Return the build123d module, or raise CadError naming the extra that installs it.

    Call it before a long export to fail early when build123d is missing.
    """
    try:
        import build123d
    except ImportError as exc:
        raise CadError(_MISSING) from exc
    return build123d
