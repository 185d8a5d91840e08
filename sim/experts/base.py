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


def register_expert(cls: type[Expert]) -> type[Expert]:
    EXPERTS[cls.task] = cls
    return cls


def make_expert(task: str, noise: float = 1.0, seed: int = 0) -> Expert:
    """The expert for `task`."""
    if task not in EXPERTS:
        raise UnknownNameError(f"no expert for task {task!r}; experts exist for: {', '.join(sorted(EXPERTS))}")
    return EXPERTS[task](noise=noise, rng=np.random.default_rng(seed))
