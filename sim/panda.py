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


def _origin(element) -> np.ndarray:
    """(4, 4) transform of a URDF <origin> element (identity where it is absent)."""
    T = np.eye(4)
    if element is not None:
        T[:3, :3] = Rotation.from_euler("xyz", [float(v) for v in element.get("rpy", "0 0 0").split()]).as_matrix()
        T[:3, 3] = [float(v) for v in element.get("xyz", "0 0 0").split()]
    return T


def _link_in_link7(link: str, finger_opening: float | None = None) -> np.ndarray:
    """(4, 4) pose of URDF link `link` in the panda_link7 frame, through the fixed joints (and,
    with `finger_opening` [m] between the fingers, the finger joints at half of it each)."""
    root = ET.parse(urdf_path()).getroot()
    joints = {j.find("child").get("link"): j for j in root.findall("joint")}
    T = np.eye(4)
    while link != "panda_link7":
        joint = joints.get(link)
        if joint is None:
            raise AssetError(f"link {link!r} is not below panda_link7 in {urdf_path()}")
        step = _origin(joint.find("origin"))
        if joint.get("type") == "prismatic" and joint.get("name") in FINGER_JOINTS and finger_opening is not None:
            axis = np.array([float(v) for v in joint.find("axis").get("xyz").split()])
            slide = np.eye(4)
            slide[:3, 3] = axis * finger_opening / 2
            step = step @ slide
        elif joint.get("type") != "fixed":
            raise AssetError(f"expected fixed joints between panda_link7 and {link}, found {joint.get('name')}")
        T = step @ T
        link = joint.find("parent").get("link")
    return T


@functools.lru_cache(maxsize=1)
def tcp_in_link7() -> np.ndarray:
    """(7,) pose of the TCP (panda_grasptarget) in the panda_link7 frame: position [m] + xyzw."""
    T = _link_in_link7("panda_grasptarget")
    return np.concatenate([T[:3, 3], Rotation.from_matrix(T[:3, :3]).as_quat()])


HAND_LINKS = ("panda_link7", "panda_hand", "panda_leftfinger", "panda_rightfinger")
"""The links rigidly placed by the TCP pose and the finger opening: the wrist's last link, the
hand and its fingers (what `sim.perception.hand_eye` registers in the cameras' clouds)."""


def hand_meshes(finger_opening: float, kind: str = "collision") -> list[tuple[Path, np.ndarray]]:
    """[(mesh file, (4, 4) its pose in the TCP frame)] of HAND_LINKS' `kind` ("collision": what
    the simulators render and collide; "visual": the finer shells of the real hand) geometry at
    `finger_opening` [m] between the fingers."""
    if kind not in ("collision", "visual"):
        raise AssetError(f"unknown mesh kind {kind!r}; known: collision, visual")
    folder = description_dir()
    root = ET.parse(urdf_path()).getroot()
    links = {link.get("name"): link for link in root.findall("link")}
    T_tcp_link7 = np.linalg.inv(_link_in_link7("panda_grasptarget"))
    out = []
    for name in HAND_LINKS:
        T_tcp_link = T_tcp_link7 @ _link_in_link7(name, finger_opening)
        for element in links[name].findall(kind):
            mesh = element.find("geometry/mesh")
            if mesh is not None:
                path = folder / mesh.get("filename").replace("package://", "")
                out.append((path, T_tcp_link @ _origin(element.find("origin"))))
    return out


@functools.lru_cache(maxsize=1)
def arm_joint_limits() -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) arm joint limits [rad] from the URDF, each (7,)."""
    root = ET.parse(urdf_path()).getroot()
    limits = {j.get("name"): j.find("limit") for j in root.findall("joint")}
    lower = np.array([float(limits[n].get("lower")) for n in ARM_JOINTS])
    upper = np.array([float(limits[n].get("upper")) for n in ARM_JOINTS])
    return lower, upper
