"""What a scene holds, independent of the physics engine: objects, cameras, physics settings.

Frames follow REP-103/105: the world frame is the robot base frame (`panda_link0`), x forward,
z up, the table top at z = 0. Object poses are (7,) arrays: position [m] + quaternion xyzw.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cad.part import Part
from fmb_core.errors import ParameterError, check_range


@dataclasses.dataclass
class SceneObject:
    """An object in the scene.

    Attributes:
        key: role in the task ("peg", "board", "fixture", ...); names the body in the backend.
        part: the cad part (its sim assets give geometry, inertia and collision pieces).
        fixed: placed (welded, pose set per episode) rather than free.
    """

    key: str
    part: Part
    fixed: bool = False


@dataclasses.dataclass(frozen=True)
class CameraSpec:
    """A pinhole camera.

    Attributes:
        name: camera name ("side_1", "side_2", "wrist").
        position: (3,) camera centre [m]; in the world frame, or the hand frame if `on_hand`.
        target: (3,) point the optical axis passes through [m], same frame.
        fovy: vertical field of view [deg].
        width, height: image size [px].
        on_hand: mounted on the hand (moves with the TCP).
        up: (3,) approximate up direction of the image, same frame.
    """

    name: str
    position: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy: float = 58.0
    width: int = 128
    height: int = 128
    on_hand: bool = False
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def __post_init__(self):
        check_range(f"camera {self.name} fovy", self.fovy, 5.0, 150.0, unit="deg")
        check_range(f"camera {self.name} width", self.width, 16, 2048, unit="px")
        check_range(f"camera {self.name} height", self.height, 16, 2048, unit="px")
        if np.allclose(self.position, self.target):
            raise ParameterError(f"camera {self.name}: position and target coincide")

    def resized(self, width: int, height: int) -> CameraSpec:
        return dataclasses.replace(self, width=width, height=height)


DEFAULT_CAMERAS: tuple[CameraSpec, ...] = (
    CameraSpec("side_1", (0.60, -0.50, 0.45), (0.52, 0.0, 0.05)),
    CameraSpec("side_2", (0.60, 0.50, 0.45), (0.52, 0.0, 0.05)),
    # Wrist camera in the TCP frame (z along the fingers, towards the workspace).
    CameraSpec("wrist", (0.0, 0.09, -0.12), (0.0, 0.0, 0.12), fovy=80.0, on_hand=True, up=(0.0, 1.0, 0.0)),
)
"""Two side cameras looking at the workspace and a wrist camera behind the fingers (as FMB)."""


@dataclasses.dataclass(frozen=True)
class PhysicsConfig:
    """Simulation settings.

    Attributes:
        timestep: physics (and impedance controller) step [s]; at most 2 ms (>= 500 Hz).
        control_hz: action rate [Hz] (FMB: 10).
        friction: sliding friction of object and finger contacts.
    """

    timestep: float = 0.002
    control_hz: float = 10.0
    friction: float = 0.8

    def __post_init__(self):
        check_range("timestep", self.timestep, 1e-4, 0.002, unit="s")
        check_range("control_hz", self.control_hz, 1.0, 100.0, unit="Hz")
        check_range("friction", self.friction, 0.05, 3.0)

    @property
    def substeps(self) -> int:
        """Physics steps per action."""
        return max(1, int(round(1.0 / (self.control_hz * self.timestep))))


@dataclasses.dataclass
class SceneSpec:
    """Everything a backend needs to build a world."""

    objects: list[SceneObject]
    cameras: tuple[CameraSpec, ...] = DEFAULT_CAMERAS
    physics: PhysicsConfig = PhysicsConfig()

    def __post_init__(self):
        keys = [o.key for o in self.objects]
        if len(set(keys)) != len(keys):
            raise ParameterError(f"object keys must be unique, got {keys}")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ParameterError(f"camera names must be unique, got {names}")

    def signature(self) -> tuple:
        """Identifies the compiled world: same signature, same model (poses may differ)."""
        return (
            tuple((o.key, o.part.name, repr(sorted(o.part.params.items())), o.fixed) for o in self.objects),
            self.cameras,
            self.physics,
        )
