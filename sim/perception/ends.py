"""Which end of a lying prism peg is its tip: the one cue the geometry gives.

A peg is its section extruded from the flat base (z = 0) to the tip (z = length), whose rim has a
1 mm 45 deg chamfer. Half turns across the axis (`models.end_flips`) map the prism onto itself
except there, so candidates that differ by one fit the cloud equally well overall; near the ends
they do not: seen at the base's rim, the points lie on a sharp edge, which the tip's chamfered
model misses by up to ~0.7 mm (and the other way round). `choose_end` keeps the candidates whose
overall fit is close to the best and picks the one with the fewest points within `band` of either
end that lie more than END_OUTLIER from the model (point-to-plane, a point without a match counts
as off), ties broken by their mean squared residual. The share of points off, not their mean
squared residual: most points in the band lie on the side walls, which fit either way, and a few
stray points of the rims dominate a mean; on exact depth the share picks the right end in 22 of
23 lying pegs of the grasp task's first 40 scenes, the mean in 11. Under the default depth camera
model (0.65 mm noise at the side cameras' range, `sim.sensor`) the chamfer is below the noise:
both pick right in 13-15 of 23.
"""

from __future__ import annotations

import numpy as np

from sim.perception.icp import Fit, IcpTarget

END_BAND = 0.006
"""Points within this of either end of the peg are the end's evidence [m]."""

END_OUTLIER = 0.0003
"""A point at an end farther than this from the model counts as off it [m]."""

FITNESS_SLACK = 0.03
"""Candidates whose fitness is within this of the best are compared at their ends."""


def end_residual(target: IcpTarget, points: np.ndarray, T: np.ndarray, length: float, distance: float,
                 band: float = END_BAND) -> tuple[float, float]:  # fmt: skip
    """(share of points off the model by more than END_OUTLIER, mean squared point-to-plane
    residual [m^2]) of the `points` (N, 3) that T (base -> part) puts within `band` [m] of either
    end of a peg of `length` [m]; a point without a match within `distance` [m] is off by that
    much. (inf, inf) when no point is there."""
    moved, _, residual, within = target.match(points, T, distance)
    z = moved[:, 2]
    ends = (z < band) | (z > length - band)
    if not ends.any():
        return float("inf"), float("inf")
    r = np.where(within, np.minimum(np.abs(residual), distance), distance)[ends]
    return float(np.mean(r > END_OUTLIER)), float(np.mean(r**2))


def choose_end(target: IcpTarget, points: np.ndarray, candidates: list[tuple[np.ndarray, Fit]], length: float,
               distance: float) -> tuple[np.ndarray, Fit]:  # fmt: skip
    """The (T, Fit) of `candidates` (the same peg pose and its end flips, each refined) that fits
    overall within FITNESS_SLACK of the best and has the smallest `end_residual` (the share of
    points off the model at the ends first)."""
    best = max(fit.fitness for _, fit in candidates)
    close = [(T, fit) for T, fit in candidates if fit.fitness >= best - FITNESS_SLACK]
    return min(close, key=lambda c: end_residual(target, points, c[0], length, distance))
