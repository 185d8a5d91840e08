"""Per-episode randomisation of object appearance and physics, drawn from the episode's seed.

FMB varies colours (eight filaments), and real parts vary in friction and mass. Ranges:
    colour      uniform over FMB's eight filament colours (`cad.fmb_reference.COLOURS`)
    friction    sliding friction coefficient uniform in [0.6, 1.0] (PLA on PLA and on steel)
    mass        the printed-mass estimate times a factor uniform in [0.8, 1.25] (infill, walls)
Disable with `EnvConfig(randomize=False)`: every object then keeps its part's colour, the scene's
friction and its estimated mass.

Board placement (`PLACEMENTS`, chosen by `EnvConfig(placement=...)`; tasks with a board on the
table, insert and rotate):
    train   centre within +-16 cm of (0.52, 0.00) m, yaw within +-10 deg (FMB's 32 x 32 cm box;
            every demonstration is drawn from it)
    novel   centre within +-26 cm but outside the training box (at least one axis beyond
            +-16 cm), yaw 10-25 deg either way: placements no demonstration has seen
Either way the target hole must lie 0.36-0.74 m from the robot base (the task redraws).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from cad.fmb_reference import COLOURS
from fmb_core.errors import check_range


class ObjectProperties(NamedTuple):
    """What the randomisation sets on one object.

    Attributes:
        colour: a key of COLOURS.
        rgba: (4,) float in [0, 1].
        friction: sliding friction coefficient.
        mass_scale: factor on the estimated mass (and inertia).
    """

    colour: str
    rgba: tuple[float, float, float, float]
    friction: float
    mass_scale: float


@dataclasses.dataclass(frozen=True)
class BoardPlacement:
    """Where a board is put: its centre offset from the task's nominal centre uniform within
    +-`half_range` [m] (x, y), redrawn while inside +-`exclude_half_range` on both axes; its yaw
    uniform within +-`yaw_range` [rad], redrawn while |yaw| < `min_yaw` [rad]."""

    half_range: tuple[float, float] = (0.16, 0.16)
    yaw_range: float = float(np.radians(10.0))
    exclude_half_range: tuple[float, float] = (0.0, 0.0)
    min_yaw: float = 0.0

    def __post_init__(self):
        for i in range(2):
            check_range("placement half_range", self.half_range[i], 0.0, 1.0, "m")
            check_range("placement exclude_half_range", self.exclude_half_range[i], 0.0, self.half_range[i], "m")
        check_range("placement yaw_range", self.yaw_range, 0.0, np.pi, "rad")
        check_range("placement min_yaw", self.min_yaw, 0.0, self.yaw_range, "rad")

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """(offset (2,) [m], yaw [rad]). The default box draws exactly as before (3 numbers)."""
        half, excl = np.asarray(self.half_range), np.asarray(self.exclude_half_range)
        for _ in range(1000):
            offset = rng.uniform(-1, 1, 2) * half
            yaw = rng.uniform(-1, 1) * self.yaw_range
            if not np.all(np.abs(offset) < excl) and abs(yaw) >= self.min_yaw:
                return offset, float(yaw)
        return offset, float(np.sign(yaw) * self.min_yaw or self.min_yaw)


PLACEMENTS: dict[str, BoardPlacement] = {
    "train": BoardPlacement(),
    "novel": BoardPlacement((0.26, 0.26), float(np.radians(25.0)), (0.16, 0.16), float(np.radians(10.0))),
}
"""Named board placements (see module docstring)."""


@dataclasses.dataclass(frozen=True)
class Randomization:
    """Ranges of the per-episode draws (see module docstring)."""

    friction: tuple[float, float] = (0.6, 1.0)
    mass_scale: tuple[float, float] = (0.8, 1.25)

    def __post_init__(self):
        for name, (low, high), bounds in (
            ("friction", self.friction, (0.05, 3.0)),
            ("mass_scale", self.mass_scale, (0.1, 10.0)),
        ):
            check_range(f"{name} low", low, *bounds)
            check_range(f"{name} high", high, low, bounds[1])

    def draw(self, rng: np.random.Generator, keys: list[str]) -> dict[str, ObjectProperties]:
        """Properties for each object key, in the order given."""
        names = list(COLOURS)
        out = {}
        for key in keys:
            colour = names[int(rng.integers(len(names)))]
            rgba = tuple(c / 255.0 for c in COLOURS[colour]) + (1.0,)
            out[key] = ObjectProperties(
                colour, rgba, float(rng.uniform(*self.friction)), float(rng.uniform(*self.mass_scale))
            )
        return out
