"""The nine FMB cross-section families.

Each family builds a sharp outline at any scale; `ShapeFamily.section` fits it to the family's
bounding box and fillets its corners. Sampling ranges keep every feature printable: section
sides within 25-60 mm and necks, prongs and star tips at least 6 mm wide at size S.
"""

from __future__ import annotations

import dataclasses
import math
from abc import abstractmethod

import numpy as np
from shapely import affinity, box, union_all
from shapely.geometry import Polygon

from cad import profile
from cad.shape_family import ShapeFamily, register_shape
from cad.units import mm
from fmb_core.errors import ParameterError


def _corner(rng: np.random.Generator) -> float:
    return mm(float(rng.uniform(0.5, 3.0)))


def _size(rng: np.random.Generator, low_mm: float = 30.0, high_mm: float = 55.0) -> float:
    return mm(float(rng.uniform(low_mm, high_mm)))


@register_shape("rectangle", aliases=("rect", "box"))
@dataclasses.dataclass(frozen=True)
class Rectangle(ShapeFamily):
    """Rectangle with filleted corners."""

    def sharp_outline(self) -> Polygon:
        return box(-1, -1, 1, 1)

    @classmethod
    def sample(cls, rng):
        width = _size(rng, 30.0, 55.0)
        depth = width / rng.uniform(1.0, 2.2)
        return cls(width=width, depth=max(depth, mm(20.0)), corner_radius=_corner(rng))


@register_shape("round", aliases=("circle", "cylinder"))
@dataclasses.dataclass(frozen=True)
class Round(ShapeFamily):
    """Circle; width and depth are both the diameter."""

    def validate(self):
        if abs(self.width - self.depth) > 1e-9:
            raise ParameterError(
                f"round.width={self.width * 1e3:.4g} mm must equal round.depth={self.depth * 1e3:.4g} mm"
            )

    def sharp_outline(self) -> Polygon:
        return profile.circle(1.0)

    def section(self, scale: float = 1.0) -> Polygon:
        return profile.circle(self.width * scale / 2)

    @classmethod
    def sample(cls, rng):
        d = _size(rng, 28.0, 52.0)
        return cls(width=d, depth=d)


@register_shape("oval", aliases=("ellipse",))
@dataclasses.dataclass(frozen=True)
class Oval(ShapeFamily):
    """Ellipse with axes width x depth."""

    def sharp_outline(self) -> Polygon:
        return profile.circle(1.0)

    def section(self, scale: float = 1.0) -> Polygon:
        w, d = self.width * scale, self.depth * scale
        return profile.normalise(affinity.scale(profile.circle(w / 2), 1.0, d / w, origin=(0, 0)))

    @classmethod
    def sample(cls, rng):
        width = _size(rng, 32.0, 55.0)
        return cls(width=width, depth=max(width / rng.uniform(1.2, 2.0), mm(20.0)))


@register_shape("hexagon", aliases=("hex",))
@dataclasses.dataclass(frozen=True)
class Hexagon(ShapeFamily):
    """Hexagon with corners on the x axis: width across corners, depth across flats."""

    def sharp_outline(self) -> Polygon:
        return profile.regular_polygon(6, 1.0, phase=0.0)

    @classmethod
    def sample(cls, rng):
        width = _size(rng, 30.0, 52.0)
        return cls(width=width, depth=width / rng.uniform(1.0, 1.35), corner_radius=_corner(rng))


@register_shape("arch")
@dataclasses.dataclass(frozen=True)
class Arch(ShapeFamily):
    """A doorway: straight sides up to `shoulder` x depth, then a circular arc over the full width.

    Attributes:
        shoulder: height of the straight sides as a fraction of the depth, in [0.2, 0.8].
    """

    shoulder: float = 0.5

    def validate(self):
        self._check_ratio("shoulder", 0.2, 0.8)

    def sharp_outline(self) -> Polygon:
        w, d = self.width, self.depth
        h = self.shoulder * d
        rise = d - h
        radius = (rise**2 + (w / 2) ** 2) / (2 * rise)
        cy = d - radius  # arc centre
        half = math.asin(min(1.0, (w / 2) / radius))
        n = max(8, profile.quad_segs_for(radius) * 4)
        a = np.linspace(math.pi / 2 + half, math.pi / 2 - half, n)
        arc = np.c_[radius * np.cos(a), cy + radius * np.sin(a)]
        pts = np.vstack([[[-w / 2, 0.0], [-w / 2, h]], arc[1:-1], [[w / 2, h], [w / 2, 0.0]]])
        return Polygon(pts)

    @classmethod
    def sample(cls, rng):
        width = _size(rng, 35.0, 55.0)
        return cls(
            width=width,
            depth=width / rng.uniform(1.3, 2.0),
            corner_radius=_corner(rng),
            shoulder=float(rng.uniform(0.25, 0.7)),
        )


@dataclasses.dataclass(frozen=True)
class _Dumbbell(ShapeFamily):
    """Two end pieces of side `depth` joined by a neck of width neck x depth."""

    neck: float = 0.5

    def validate(self):
        self._check_ratio("neck", 0.3, 0.8)
        if self.width < 2.1 * self.depth:
            raise ParameterError(
                f"{self.name}: width={self.width * 1e3:.4g} mm must be at least 2.1 x depth "
                f"({2.1 * self.depth * 1e3:.4g} mm) to leave room for the neck"
            )

    @abstractmethod
    def _end(self, right: bool) -> Polygon:
        """The left (right=False) or right end piece, of side `depth`."""

    def sharp_outline(self) -> Polygon:
        w, d = self.width, self.depth
        neck = box(-w / 2 + d / 2, -self.neck * d / 2, w / 2 - d / 2, self.neck * d / 2)
        return union_all([self._end(False), neck, self._end(True)])

    @classmethod
    def sample(cls, rng):
        depth = _size(rng, 17.0, 26.0)
        return cls(
            width=depth * rng.uniform(2.3, 3.0),
            depth=depth,
            corner_radius=_corner(rng),
            neck=float(rng.uniform(0.4, 0.7)),
        )


@register_shape("square_circle", aliases=("squarecircle",))
@dataclasses.dataclass(frozen=True)
class SquareCircle(_Dumbbell):
    """A square and a circle of the same size joined by a neck (FMB's "square-circle")."""

    def _end(self, right: bool) -> Polygon:
        w, d = self.width, self.depth
        if right:
            return profile.circle(d / 2, center=(w / 2 - d / 2, 0.0))
        return box(-w / 2, -d / 2, -w / 2 + d, d / 2)


@register_shape("double_square", aliases=("doublesquare",))
@dataclasses.dataclass(frozen=True)
class DoubleSquare(_Dumbbell):
    """Two squares joined by a neck (FMB's "double-square")."""

    def _end(self, right: bool) -> Polygon:
        w, d = self.width, self.depth
        x0 = w / 2 - d if right else -w / 2
        return box(x0, -d / 2, x0 + d, d / 2)


@register_shape("three_prong", aliases=("3_prong", "3prong", "prong"))
@dataclasses.dataclass(frozen=True)
class ThreeProng(ShapeFamily):
    """A hub with `prongs` round-ended arms spread evenly, the first along +y.

    Attributes:
        prongs: number of arms, 3 for FMB's "3-prong", 3-6 for sampled members.
        prong_width: arm width as a fraction of the arm length from the centre, in [0.35, 0.9].
        hub: hub radius as a fraction of the arm length, in [0.2, 0.8].
    """

    prongs: int = 3
    prong_width: float = 0.62
    hub: float = 0.55

    def validate(self):
        self._check_int("prongs", 3, 6)
        self._check_ratio("prong_width", 0.35, 0.9)
        self._check_ratio("hub", 0.2, 0.8)

    def sharp_outline(self) -> Polygon:
        half = self.prong_width / 2
        arm = union_all([box(-half, 0.0, half, 1.0 - half), profile.circle(half, (0.0, 1.0 - half))])
        arms = [profile.rotate(arm, 2 * math.pi * i / self.prongs) for i in range(self.prongs)]
        return union_all([profile.circle(self.hub), *arms])

    @classmethod
    def sample(cls, rng):
        width = _size(rng, 40.0, 58.0)
        return cls(
            width=width,
            depth=width * rng.uniform(0.85, 1.0),
            corner_radius=_corner(rng),
            prongs=int(rng.integers(3, 7)),
            prong_width=float(rng.uniform(0.45, 0.75)),
            hub=float(rng.uniform(0.35, 0.65)),
        )


@register_shape("star")
@dataclasses.dataclass(frozen=True)
class Star(ShapeFamily):
    """A star with `points` tips, the first along +y.

    Attributes:
        points: number of tips, 5 for FMB, 4-8 for sampled members.
        inner_ratio: inner over outer vertex radius, in [0.35, 0.8].
    """

    points: int = 5
    inner_ratio: float = 0.5

    def validate(self):
        self._check_int("points", 4, 8)
        self._check_ratio("inner_ratio", 0.35, 0.8)

    def sharp_outline(self) -> Polygon:
        n = self.points
        a = math.pi / 2 + math.pi * np.arange(2 * n) / n
        r = np.where(np.arange(2 * n) % 2 == 0, 1.0, self.inner_ratio)
        return Polygon(np.c_[r * np.cos(a), r * np.sin(a)])

    @classmethod
    def sample(cls, rng):
        width = _size(rng, 38.0, 56.0)
        points = int(rng.integers(4, 9))
        return cls(
            width=width,
            depth=width * rng.uniform(0.92, 1.05),
            corner_radius=_corner(rng),
            points=points,
            inner_ratio=float(rng.uniform(0.45 + 0.02 * points, 0.72)),
        )


FMB_SHAPES: tuple[str, ...] = (
    "rectangle",
    "round",
    "oval",
    "hexagon",
    "arch",
    "square_circle",
    "double_square",
    "three_prong",
    "star",
)
"""The nine FMB families, in FMB's order."""
