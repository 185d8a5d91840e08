"""The Franka Panda: where its description lives and the constants both backends share.

The description is the Panda URDF shipped with `pybullet_data` (Apache-2.0, with OBJ meshes); it
loads in PyBullet directly and in MuJoCo once its `package://` mesh paths are made absolute.
The TCP is the URDF's `panda_grasptarget` (between the fingertips), reached from `panda_link7`
through fixed joints; we read that chain from the file rather than copying numbers.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from sim.exceptions import AssetError

ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
HOME_Q = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])
"""Rest posture [rad]: TCP about 0.5 m in front of the base, 0.35 m up, pointing down."""

TORQUE_LIMITS = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
"""Franka joint torque limits [N m]."""

GRIPPER_OPEN = 0.08
"""Widest finger opening of the Panda hand [m] (FMB's hand opened to 0.09 m)."""

GRIPPER_FORCE = 70.0
"""Continuous grasp force of the Panda hand [N]."""

FINGER_SPEED = 0.1
"""Speed of each finger when opening or closing [m/s] (the Panda hand's rated maximum)."""


def description_dir() -> Path:
    """Folder holding panda.urdf and its meshes; AssetError if pybullet_data is missing."""
    try:
        import pybullet_data
    except ModuleNotFoundError:
        raise AssetError("the Panda description comes with pybullet: pip install -e .[sim]") from None
    folder = Path(pybullet_data.getDataPath()) / "franka_panda"
    if not (folder / "panda.urdf").is_file():
        raise AssetError(f"{folder / 'panda.urdf'} is missing; reinstall pybullet")
    return folder


def urdf_path() -> Path:
    return description_dir() / "panda.urdf"


def urdf_text_absolute() -> str:
    """The URDF with mesh paths made absolute (for MuJoCo's URDF importer)."""
    folder = description_dir()
    return urdf_path().read_text().replace("package://", f"{folder}/")


@functools.lru_cache(maxsize=1)
def tcp_in_link7() -> np.ndarray:
    """(7,) pose of the TCP (panda_grasptarget) in the panda_link7 frame: position [m] + xyzw."""
    root = ET.parse(urdf_path()).getroot()
    joints = {j.find("child").get("link"): j for j in root.findall("joint")}
    chain = []
    link = "panda_grasptarget"
    while link != "panda_link7":
        joint = joints[link]
        if joint.get("type") != "fixed":
            raise AssetError(f"expected fixed joints between panda_link7 and the TCP, found {joint.get('name')}")
        chain.append(joint.find("origin"))
        link = joint.find("parent").get("link")
    rot = Rotation.identity()
    pos = np.zeros(3)
    for origin in reversed(chain):
        xyz = np.array([float(v) for v in origin.get("xyz", "0 0 0").split()])
        rpy = [float(v) for v in origin.get("rpy", "0 0 0").split()]
        pos = pos + rot.apply(xyz)
        rot = rot * Rotation.from_euler("xyz", rpy)
    return np.concatenate([pos, rot.as_quat()])


@functools.lru_cache(maxsize=1)
def arm_joint_limits() -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) arm joint limits [rad] from the URDF, each (7,)."""
    root = ET.parse(urdf_path()).getroot()
    limits = {j.get("name"): j.find("limit") for j in root.findall("joint")}
    lower = np.array([float(limits[n].get("lower")) for n in ARM_JOINTS])
    upper = np.array([float(limits[n].get("upper")) for n in ARM_JOINTS])
    return lower, upper
