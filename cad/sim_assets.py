"""Simulator assets of a part: MJCF for MuJoCo, URDF + OBJ for PyBullet.

Both formats get the same three things: an explicit inertial (uniform solid of the print mesh,
scaled to a given mass), the print mesh as the visual (an STL in millimetres, scaled by 0.001),
and the exact convex pieces of `Part.collision_pieces()` as collision geometry (metres). Each
piece is collided as its convex hull, so the union of the pieces is the collision solid.

Files are built with xml.etree and floats are written with a fixed format, so the same part
gives the same bytes. This module does not import mujoco or pybullet.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cad.exceptions import CadError
from cad.fmb_reference import COLOURS
from cad.part import CollisionPiece, Part
from fmb_core.errors import ParameterError, check_range

MM_TO_M = "0.001 0.001 0.001"
"""Mesh scale attribute for STL files in millimetres."""


class Inertial(NamedTuple):
    """Mass properties of a rigid body.

    Attributes:
        mass: [kg].
        com: (3,) float, centre of mass in the part frame [m].
        inertia: (3, 3) float, inertia tensor about the COM, axes of the part frame [kg m^2].
    """

    mass: float
    com: np.ndarray
    inertia: np.ndarray


def inertial_properties(part: Part, mass: float) -> Inertial:
    """Mass properties of `part` as a uniform solid of total `mass`.

    A printed part is a shell around sparse infill, so its true inertia is somewhat larger than
    that of a uniform solid with the same mass; for the simulator this is close enough.

    Args:
        part: the part; its watertight print mesh `part.mesh()` [m] is used.
        mass: total mass [kg], e.g. from `cad.mass.estimate_mass`.

    Returns:
        The Inertial, in the part frame.
    """
    check_range("mass", mass, 1e-6, 1e3, unit="kg")
    mesh = part.mesh()
    if not mesh.is_watertight or mesh.volume <= 0:
        raise CadError(f"{part.name}: print mesh is not a watertight solid (volume {mesh.volume:.3g} m^3)")
    com = np.array(mesh.center_mass, dtype=float)
    inertia = np.array(mesh.moment_inertia, dtype=float) * (mass / mesh.mass)  # trimesh: mass = volume * density
    # Snap round-off (sub-picometre COM offsets, relative 1e-9 products of inertia) to zero so
    # that symmetric parts give exact zeros and the written files do not carry numerical noise.
    com[np.abs(com) < 1e-12] = 0.0
    inertia[np.abs(inertia) < 1e-9 * np.abs(inertia).max()] = 0.0
    return Inertial(float(mass), com, inertia)


def write_mjcf(part: Part, out_dir: Path, visual_mesh: str, inertial: Inertial, fixed: bool = False) -> Path:
    """Write `out_dir/<part.name>.xml`: one body named `part.name`, ready for `MjSpec.attach`.

    The body has a free joint `<name>_free` (none if `fixed`), the explicit inertial, the visual
    geom `<name>_visual` (group 2, no contacts), collision geoms `<name>_col_<i>` (group 3, one
    inline convex mesh per piece [m]) and a site `<name>_<frame>` per entry of `part.frames`.

    Args:
        part: the part.
        out_dir: output folder, created if missing.
        visual_mesh: STL file in millimetres, relative to `out_dir`.
        inertial: mass properties in the part frame.
        fixed: weld the body to its parent instead of giving it a free joint.

    Returns:
        Path of the written file.
    """
    _check_visual(visual_mesh)
    name = part.name
    pieces = part.collision_pieces()
    root = ET.Element("mujoco", model=name)
    asset = ET.SubElement(root, "asset")
    ET.SubElement(asset, "mesh", name=f"{name}_visual", file=visual_mesh, scale=MM_TO_M)
    for i, piece in enumerate(pieces):
        ET.SubElement(asset, "mesh", name=f"{name}_col_{i}", vertex=_fmt(piece.vertices()))
    body = ET.SubElement(ET.SubElement(root, "worldbody"), "body", name=name)
    if not fixed:
        ET.SubElement(body, "freejoint", name=f"{name}_free")
    inertia = inertial.inertia
    full = [inertia[0, 0], inertia[1, 1], inertia[2, 2], inertia[0, 1], inertia[0, 2], inertia[1, 2]]
    ET.SubElement(body, "inertial", pos=_fmt(inertial.com), mass=_fmt(inertial.mass), fullinertia=_fmt(full))
    no_contact = {"contype": "0", "conaffinity": "0", "group": "2", "rgba": _fmt(_rgba(part))}
    ET.SubElement(body, "geom", name=f"{name}_visual", type="mesh", mesh=f"{name}_visual", **no_contact)
    for i in range(len(pieces)):
        ET.SubElement(body, "geom", name=f"{name}_col_{i}", type="mesh", mesh=f"{name}_col_{i}", group="3")
    for frame_name, frame in part.frames.items():
        x, y, z, w = frame.quaternion
        ET.SubElement(body, "site", name=f"{name}_{frame_name}", pos=_fmt(frame.position), quat=_fmt((w, x, y, z)))
    return _write_xml(root, Path(out_dir) / f"{name}.xml")


def write_urdf(part: Part, out_dir: Path, visual_mesh: str, inertial: Inertial, fixed: bool = False) -> Path:
    """Write `out_dir/<part.name>.urdf` and its collision mesh `out_dir/<part.name>_collision.obj`.

    The link `part.name` holds the inertial (full tensor at the COM, rpy 0), the visual STL
    (millimetres, scale 0.001) and one collision mesh: an OBJ with one object `piece_<i>` per
    convex piece [m], which PyBullet loads as a compound of convex hulls. PyBullet computes
    inertia from the collision shape unless it is loaded with `flags=p.URDF_USE_INERTIA_FROM_FILE`.

    Args:
        part: the part.
        out_dir: output folder, created if missing.
        visual_mesh: STL file in millimetres, relative to `out_dir`.
        inertial: mass properties in the part frame.
        fixed: add a massless root link "world" and a fixed joint to the part's link.

    Returns:
        Path of the written URDF.
    """
    _check_visual(visual_mesh)
    name = part.name
    out_dir = Path(out_dir)
    obj = _write_obj(part.collision_pieces(), out_dir / f"{name}_collision.obj")
    robot = ET.Element("robot", name=name)
    if fixed:
        ET.SubElement(robot, "link", name="world")
        joint = ET.SubElement(robot, "joint", name=f"{name}_fixed", type="fixed")
        ET.SubElement(joint, "parent", link="world")
        ET.SubElement(joint, "child", link=name)
    link = ET.SubElement(robot, "link", name=name)
    inert = ET.SubElement(link, "inertial")
    ET.SubElement(inert, "origin", xyz=_fmt(inertial.com), rpy="0 0 0")
    ET.SubElement(inert, "mass", value=_fmt(inertial.mass))
    axes = {"ixx": (0, 0), "ixy": (0, 1), "ixz": (0, 2), "iyy": (1, 1), "iyz": (1, 2), "izz": (2, 2)}
    ET.SubElement(inert, "inertia", {k: _fmt(inertial.inertia[ij]) for k, ij in axes.items()})
    visual = ET.SubElement(link, "visual")
    ET.SubElement(visual, "origin", xyz="0 0 0", rpy="0 0 0")
    ET.SubElement(ET.SubElement(visual, "geometry"), "mesh", filename=visual_mesh, scale=MM_TO_M)
    material = ET.SubElement(visual, "material", name=part.colour)
    ET.SubElement(material, "color", rgba=_fmt(_rgba(part)))
    collision = ET.SubElement(link, "collision")
    ET.SubElement(collision, "origin", xyz="0 0 0", rpy="0 0 0")
    ET.SubElement(ET.SubElement(collision, "geometry"), "mesh", filename=obj.name)
    return _write_xml(robot, out_dir / f"{name}.urdf")


STATIC_KINDS = ("board", "fixture", "assembly_board")
"""Part kinds written without a free joint: they are placed (welded) in a scene, not thrown in."""


def write_sim_assets(part: Part, out_dir: Path, visual_mesh: str, mass: float) -> dict[str, str]:
    """Compute the inertial of `part` and write its MJCF, URDF and collision OBJ.

    Args:
        part: the part; kinds in STATIC_KINDS are written fixed, others with a free joint.
        out_dir: output folder, created if missing.
        visual_mesh: STL file in millimetres, relative to `out_dir`.
        mass: total mass [kg].

    Returns:
        {"mjcf": ..., "urdf": ..., "collision_obj": ...}: file names relative to `out_dir`.
    """
    inertial = inertial_properties(part, mass)
    fixed = part.kind in STATIC_KINDS
    mjcf = write_mjcf(part, out_dir, visual_mesh, inertial, fixed=fixed)
    urdf = write_urdf(part, out_dir, visual_mesh, inertial, fixed=fixed)
    return {"mjcf": mjcf.name, "urdf": urdf.name, "collision_obj": f"{part.name}_collision.obj"}


def _check_visual(visual_mesh: str) -> None:
    if not str(visual_mesh).lower().endswith(".stl"):
        raise ParameterError(f"visual_mesh must be an STL file (in mm), got {visual_mesh!r}")


def _rgba(part: Part) -> tuple[float, ...]:
    if part.colour not in COLOURS:
        raise ParameterError(f"unknown colour {part.colour!r} of {part.name}; known: {', '.join(COLOURS)}")
    return (*(c / 255.0 for c in COLOURS[part.colour]), 1.0)


def _fmt(values) -> str:
    """Space-separated '%.9g' numbers; -0 is written as 0."""
    return " ".join("%.9g" % (float(v) + 0.0) for v in np.ravel(values))


def _write_xml(root: ET.Element, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root, space="  ")
    path.write_bytes(ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n")
    return path


def _write_obj(pieces: list[CollisionPiece], path: Path) -> Path:
    """One OBJ object `piece_<i>` per convex prism [m], outward-facing triangles, 1-based indices."""
    lines = [f"# {len(pieces)} convex pieces [m]"]
    first = 1
    for i, piece in enumerate(pieces):
        k = len(piece.polygon)
        lines.append(f"o piece_{i}")
        lines.extend(f"v {_fmt(v)}" for v in piece.vertices())
        bottom = [(first, first + j + 1, first + j) for j in range(1, k - 1)]  # ring reversed: -z
        top = [(first + k, first + k + j, first + k + j + 1) for j in range(1, k - 1)]
        sides = []
        for j in range(k):
            a, b = first + j, first + (j + 1) % k
            sides += [(a, b, b + k), (a, b + k, a + k)]
        lines.extend(f"f {a} {b} {c}" for a, b, c in bottom + top + sides)
        first += 2 * k
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path
