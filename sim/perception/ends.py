"""Which end of a lying prism peg is its tip: the one cue the geometry gives.

A peg is its section extruded from the flat base (z = 0) to the tip (z = length), whose rim has a
1 mm 45 deg chamfer. Half turns across the axis (`models.end_flips`) map the prism onto itself
except there, so candidates that differ by one fit the cloud equally well overall; near the ends
they do not: seen at the base's rim, the points lie on a sharp edge, which the tip's chamfered
model misses by up to ~0.7 mm (and the other way round). `choose_end` keeps the candidates whose
overall fit is close to the best and picks the one whose points within `band` of either end lie
closest to the model (point-to-plane, clipped at the matching distance).
"""

from __future__ import annotations

import numpy as np

from sim.perception.icp import Fit, IcpTarget

END_BAND = 0.006
"""Points within this of either end of the peg are the end's evidence [m]."""

FITNESS_SLACK = 0.03
"""Candidates whose fitness is within this of the best are compared at their ends."""


def end_residual(target: IcpTarget, points: np.ndarray, T: np.ndarray, length: float, distance: float,
                 band: float = END_BAND) -> float:  # fmt: skip
    """Mean squared point-to-plane residual [m^2] of the `points` (N, 3) that T (base -> part)
    puts within `band` [m] of either end of a peg of `length` [m] (inf when none)."""
    moved, _, residual, within = target.match(points, T, distance)
    z = moved[:, 2]
    ends = (z < band) | (z > length - band)
    if not ends.any():
        return float("inf")
    r = np.where(within, np.minimum(np.abs(residual), distance), distance)[ends]
    return float(np.mean(r**2))


def choose_end(target: IcpTarget, points: np.ndarray, candidates: list[tuple[np.ndarray, Fit]], length: float,
               distance: float) -> tuple[np.ndarray, Fit]:  # fmt: skip
    """The (T, Fit) of `candidates` (the same peg pose and its end flips, each refined) that fits
    overall within FITNESS_SLACK of the best and has the smallest `end_residual`."""
    best = max(fit.fitness for _, fit in candidates)
    close = [(T, fit) for T, fit in candidates if fit.fitness >= best - FITNESS_SLACK]
    return min(close, key=lambda c: end_residual(target, points, c[0], length, distance))
