"""Files the PyBullet backend loads, prepared without PyBullet: the Panda URDF with corrected
inertials and rotor armature, and what a cad part's URDF says about its link.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from sim import panda
from sim.exceptions import AssetError

ARMATURE = 0.1  # [kg m^2] rotor inertia on each arm joint axis (the MuJoCo backend's armature)


class PartLink(NamedTuple):
    """What a part's URDF says about its link (part frame, SI units)."""

    mass: float
    com: np.ndarray  # (3,)
    inertia: np.ndarray  # (3, 3) about the COM
    visual: Path  # STL [mm]
    rgba: tuple[float, ...]
    collision: Path  # OBJ, one object per convex piece [m]


@functools.lru_cache(maxsize=1)
def panda_urdf_text() -> str:
    """The Panda URDF for this backend, mesh paths made absolute.

    Each link with mass gets the inertial of its collision mesh as a uniform solid of that mass
    (COM and full tensor, PyBullet diagonalises it; the massless frame links get none). Each arm
    link also gets ARMATURE about its joint axis (the link's z) as a massless thin disc,
    ARMATURE * diag(1/2, 1/2, 1): a rotor about z alone would be closer to MuJoCo's armature, but
    it breaks the triangle inequality that PyBullet's importer and inverse dynamics enforce.
    The fingers' <contact> blocks (compliant contact, friction) are dropped: friction is set by
    the backend, and contacts stay rigid as for the parts.
    """
    folder = panda.description_dir()
    root = ET.parse(panda.urdf_path()).getroot()
    rotors = {}
    for joint in root.findall("joint"):
        if joint.get("name") in panda.ARM_JOINTS:
            if joint.find("axis").get("xyz").split() != ["0", "0", "1"]:
                raise AssetError(f"{joint.get('name')}: expected its axis along the child link's z")
            rotors[joint.find("child").get("link")] = ARMATURE * np.diag([0.5, 0.5, 1.0])
    for link in root.findall("link"):
        inertial = link.find("inertial")
        if inertial is None:
            continue
        mass = float(inertial.find("mass").get("value"))
        com, tensor = np.zeros(3), np.zeros((3, 3))
        collision = link.find("collision")
        if mass > 0 and collision is not None:
            com, tensor = mesh_inertial(folder, collision, mass)
        tensor = tensor + rotors.get(link.get("name"), 0.0)
        inertial.find("origin").attrib.update(xyz=" ".join(f"{v:.9g}" for v in com), rpy="0 0 0")
        axes = {"ixx": (0, 0), "ixy": (0, 1), "ixz": (0, 2), "iyy": (1, 1), "iyz": (1, 2), "izz": (2, 2)}
        inertial.find("inertia").attrib.update({k: f"{tensor[ij]:.9g}" for k, ij in axes.items()})
        for contact in link.findall("contact"):
            link.remove(contact)
    return ET.tostring(root, encoding="unicode").replace("package://", f"{folder}/")


def mesh_inertial(folder: Path, collision: ET.Element, mass: float) -> tuple[np.ndarray, np.ndarray]:
    """COM (3,) [m] and inertia (3, 3) [kg m^2] about it, link axes, of a collision mesh as a solid."""
    mesh = trimesh.load(
        folder / collision.find("geometry/mesh").get("filename").replace("package://", ""), force="mesh"
    )
    mesh.merge_vertices(merge_tex=True, merge_norm=True)  # the OBJ splits vertices at normal seams
    if not mesh.is_watertight:
        mesh = mesh.convex_hull
    origin = collision.find("origin")
    if origin is not None:
        rpy = [float(v) for v in origin.get("rpy", "0 0 0").split()]
        transform = np.eye(4)
        transform[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()  # URDF rpy: fixed axes x, y, z
        transform[:3, 3] = [float(v) for v in origin.get("xyz", "0 0 0").split()]
        mesh.apply_transform(transform)
    return np.array(mesh.center_mass), np.array(mesh.moment_inertia) * (mass / mesh.mass)


def read_part_urdf(path: Path, name: str) -> PartLink:
    """Inertial, visual and collision of link `name` of a cad part URDF (see cad.sim_assets)."""
    try:
        link = ET.parse(path).getroot().find(f"link[@name='{name}']")
        inertial = link.find("inertial")
        t = {k: float(v) for k, v in inertial.find("inertia").attrib.items()}
        tensor = np.array(
            [[t["ixx"], t["ixy"], t["ixz"]], [t["ixy"], t["iyy"], t["iyz"]], [t["ixz"], t["iyz"], t["izz"]]]
        )
        return PartLink(
            mass=float(inertial.find("mass").get("value")),
            com=np.array(inertial.find("origin").get("xyz").split(), dtype=float),
            inertia=tensor,
            visual=path.parent / link.find("visual/geometry/mesh").get("filename"),
            rgba=tuple(float(v) for v in link.find("visual/material/color").get("rgba").split()),
            collision=path.parent / link.find("collision/geometry/mesh").get("filename"),
        )
    except (AttributeError, KeyError, ValueError, ET.ParseError) as err:
        raise AssetError(f"{path}: not a cad part URDF with a link {name!r} ({err})") from None
