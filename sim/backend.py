"""The physics-engine contract, and the registry of backends.

An environment talks to the physics only through `Backend`; tasks, experts and policies never
see it. A backend builds the world from a `SceneSpec`, reports the robot state the controller
needs, applies joint torques and a gripper command, steps, and renders cameras.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple

import numpy as np

from sim.exceptions import UnknownNameError
from sim.scene import CameraSpec, SceneSpec


class RobotState(NamedTuple):
    """What the controller and the observation need, all in the base frame.

    Attributes:
        q: (7,) arm joint positions [rad].
        dq: (7,) arm joint velocities [rad/s].
        tcp_pose: (7,) TCP position [m] + quaternion xyzw.
        tcp_twist: (6,) TCP linear [m/s] + angular [rad/s] velocity.
        jacobian: (6, 7) TCP Jacobian, rows [linear; angular].
        bias: (7,) gravity + Coriolis joint torques [N m].
        gripper_width: distance between the fingers [m].
    """

    q: np.ndarray
    dq: np.ndarray
    tcp_pose: np.ndarray
    tcp_twist: np.ndarray
    jacobian: np.ndarray
    bias: np.ndarray
    gripper_width: float


class Backend(ABC):
    """A physics engine holding one scene."""

    name: ClassVar[str] = ""

    @abstractmethod
    def load(self, scene: SceneSpec) -> None:
        """Build the world (robot, table, objects, cameras) for `scene`."""

    @abstractmethod
    def reset(self, q: np.ndarray, gripper_width: float, object_poses: dict[str, np.ndarray]) -> None:
        """Set the arm joints [rad], finger opening [m] and object poses ((7,) each), zero velocities."""

    @abstractmethod
    def robot_state(self) -> RobotState:
        """The robot's current state."""

    @abstractmethod
    def forward_kinematics(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP pose (7,) and Jacobian (6, 7) at arm joints `q` [rad], without changing the state."""

    @abstractmethod
    def step(self, torques: np.ndarray, gripper_width: float) -> None:
        """Apply arm `torques` (7,) [N m] and a finger opening target [m], advance one timestep."""

    @abstractmethod
    def object_pose(self, key: str) -> np.ndarray:
        """(7,) pose of object `key` in the world frame."""

    @abstractmethod
    def wrench(self) -> np.ndarray:
        """(6,) force [N] and torque [N m] the hand exerts on the wrist, in the TCP frame."""

    @abstractmethod
    def touching(self, key_a: str, key_b: str) -> bool:
        """Whether two bodies are in contact; keys are object keys or "left_finger"/"right_finger"."""

    @abstractmethod
    def set_object_properties(self, key: str, rgba, friction: float, mass_scale: float) -> None:
        """Colour (4,) in [0, 1], sliding friction and mass factor (on the part's estimated mass and
        inertia) of object `key`; applied until the next call, including across resets."""

    @abstractmethod
    def render(self, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
        """RGB (H, W, 3) uint8 and depth (H, W) float32 [m] of `camera`."""

    @abstractmethod
    def camera_pose(self, camera: CameraSpec) -> np.ndarray:
        """(7,) pose of the camera in the world frame (optical axis +z, OpenCV convention)."""

    @abstractmethod
    def save_state(self) -> object:
        """An opaque snapshot of the full simulation state."""

    @abstractmethod
    def restore_state(self, state: object) -> None:
        """Return to a snapshot from `save_state`."""

    def close(self) -> None:
        """Release engine resources."""


BACKENDS: dict[str, str] = {
    "mujoco": "sim.mujoco_backend:MujocoBackend",
    "pybullet": "sim.pybullet_backend:PybulletBackend",
}
"""Backend name -> "module:Class"; modules are imported only when asked for."""


def make_backend(name: str) -> Backend:
    """Instantiate the backend called `name`."""
    if name not in BACKENDS:
        raise UnknownNameError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
