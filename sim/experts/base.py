"""The expert contract and registry.

An expert maps the environment's world view (privileged: object poses, task targets) to a 7-D
action in the same space a policy uses. Noise parameters make demonstrations diverse; the same
seed gives the same actions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from sim.exceptions import UnknownNameError
from sim.spatial import rotation_error

EXPERTS: dict[str, type[Expert]] = {}


class Expert(ABC):
    """A scripted policy for one task."""

    task: ClassVar[str] = ""

    def __init__(self, noise: float = 1.0, rng: np.random.Generator | None = None):
        """Args:
        noise: scale of the action noise and of the randomised choices (0 = deterministic).
        rng: generator for the noise.
        """
        self.noise = float(noise)
        self.rng = rng or np.random.default_rng(0)

    def reset(self, env) -> None:
        """Called after env.reset(); draw per-episode choices here."""

    @abstractmethod
    def act(self, env) -> np.ndarray:
        """(7,) action for the current state of `env` (an FmbEnv)."""

    def jitter(self, delta: np.ndarray, far: float, translation: float = 0.002, rotation: float = np.radians(1.0)):
        """Add Gaussian noise to `delta` in place: up to `translation` [m] and `rotation` [rad] per
        axis, scaled by the expert's noise and by `far` in [0, 1] (0 near the goal: no noise)."""
        if self.noise > 0:
            delta[:3] += self.rng.normal(0, translation * self.noise * far, 3)
            delta[3:6] += self.rng.normal(0, rotation * self.noise * far, 3)
        return delta


def servo(tcp: np.ndarray, target: np.ndarray, close: bool, limit: float, turn_limit: float | None = None):
    """(7,) action moving the TCP (7,) towards `target` (7,): translation clipped to `limit` [m]
    (same direction), rotation vector clipped to `turn_limit` [rad] when given, gripper `close`."""
    delta = np.zeros(7)
    delta[:3] = target[:3] - tcp[:3]
    delta[3:6] = rotation_error(tcp[3:], target[3:])
    norm = np.linalg.norm(delta[:3])
    if norm > limit:
        delta[:3] *= limit / norm
    if turn_limit is not None:
        size = np.linalg.norm(delta[3:6])
        if size > turn_limit:
            delta[3:6] *= turn_limit / size
    delta[6] = 1.0 if close else 0.0
    return delta


def near(a: np.ndarray, b: np.ndarray, distance: float, angle: float) -> bool:
    """Whether poses `a` and `b` (7,) are within `distance` [m] and `angle` [rad] of each other."""
    return np.linalg.norm(a[:3] - b[:3]) < distance and np.linalg.norm(rotation_error(a[3:], b[3:])) < angle


def register_expert(cls: type[Expert]) -> type[Expert]:
    EXPERTS[cls.task] = cls
    return cls


def make_expert(task: str, noise: float = 1.0, seed: int = 0) -> Expert:
    """The expert for `task`."""
    if task not in EXPERTS:
        raise UnknownNameError(f"no expert for task {task!r}; experts exist for: {', '.join(sorted(EXPERTS))}")
    return EXPERTS[task](noise=noise, rng=np.random.default_rng(seed))
