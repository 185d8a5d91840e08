"""The task contract: what an episode starts from, and how it is judged.

A task never touches a backend: it sees the world through a read-only `WorldView` that the
environment hands it, so the same task runs on MuJoCo and PyBullet.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple, Protocol

import numpy as np

from fmb_core.errors import check_choice
from sim.objects import ObjectPool
from sim.scene import SceneObject


class WorldView(Protocol):
    """Read-only access to the simulated world (implemented by the environment)."""

    def object_pose(self, key: str) -> np.ndarray: ...  # (7,) world pose

    def tcp_pose(self) -> np.ndarray: ...  # (7,)

    def gripper_width(self) -> float: ...  # [m]

    def touching(self, key_a: str, key_b: str) -> bool: ...


@dataclasses.dataclass
class EpisodeStart:
    """Everything a task decides when an episode starts.

    Attributes:
        objects: scene objects (the world is rebuilt only when these change).
        object_poses: key -> (7,) initial world pose.
        tcp_pose: (7,) initial TCP pose (reached by inverse kinematics).
        gripper_width: initial finger opening [m].
        gripper_closed: whether the gripper starts closed (holding something).
        info: JSON-ready facts about the episode (peg family, size, target, ...).
        warmup: absolute (TCP pose (7,), close gripper) targets the environment tracks for one
            control period each after the reset, before the episode's first step (not recorded):
            a start such as "peg held after a grasp" is reached by doing the grasp physically.
    """

    objects: list[SceneObject]
    object_poses: dict[str, np.ndarray]
    tcp_pose: np.ndarray
    gripper_width: float
    gripper_closed: bool
    info: dict
    warmup: list = dataclasses.field(default_factory=list)


class Evaluation(NamedTuple):
    """A task's judgement of the current state.

    Attributes:
        success: the task's success check holds.
        progress: dense progress in [0, 1] (1 at success), for ranking candidate actions.
        failed: the episode cannot succeed any more (e.g. the peg was dropped).
        metrics: the measured quantities behind the judgement (SI units).
    """

    success: bool
    progress: float
    failed: bool
    metrics: dict


class Task(ABC):
    """A manipulation task (see each subclass's docstring for its thresholds)."""

    name: ClassVar[str] = ""
    max_steps: ClassVar[int] = 100

    def __init__(self, pool: ObjectPool | None = None, placement: str = "train"):
        """`placement`: board placement name (sim.randomization.PLACEMENTS), for tasks with a board."""
        from sim.randomization import PLACEMENTS

        self.pool = pool or ObjectPool.fmb()
        self.placement = check_choice("placement", placement, PLACEMENTS)

    @abstractmethod
    def start(self, rng: np.random.Generator) -> EpisodeStart:
        """Draw an episode's objects, poses and robot start from `rng`."""

    @abstractmethod
    def evaluate(self, world: WorldView, start: EpisodeStart) -> Evaluation:
        """Judge the current state of `world` for the episode that began with `start`."""


def peg_facts(spec) -> dict:
    """The facts about a peg every task records: part name, family, size and length names."""
    return {"peg": spec.part_name, "family": spec.shape.name, "size": spec.size, "length": spec.length}


TASKS: dict[str, type[Task]] = {}


def step_limit(task: str, max_steps: int = 0) -> int:
    """Steps after which an episode of `task` ends: `max_steps`, or the task's own limit when 0."""
    return int(max_steps) or TASKS[task].max_steps


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator adding a task to TASKS under `cls.name`."""
    TASKS[cls.name] = cls
    return cls
