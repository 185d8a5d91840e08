"""Per-episode randomisation of object appearance and physics, drawn from the episode's seed.

FMB varies colours (eight filaments), and real parts vary in friction and mass. Ranges:
    colour      uniform over FMB's eight filament colours (`cad.fmb_reference.COLOURS`)
    friction    sliding friction coefficient uniform in [0.6, 1.0] (PLA on PLA and on steel)
    mass        the printed-mass estimate times a factor uniform in [0.8, 1.25] (infill, walls)
Disable with `EnvConfig(randomize=False)`: every object then keeps its part's colour, the scene's
friction and its estimated mass.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from cad.fmb_reference import COLOURS
from fmb.errors import check_range


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
