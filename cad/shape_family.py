"""Shape families: the contract every peg cross-section implements, and their registry.

A family is a frozen dataclass. Its fields are the nominal (size M) bounding box of the
cross-section [m], a corner radius [m], and dimensionless shape parameters (aspect ratios, point
counts). `section()` turns it into a polygon; `sample(rng)` draws a new member of the family
within printable limits.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from shapely.geometry import Polygon

from cad import profile
from cad.exceptions import UnknownShapeError
from cad.fmb_reference import SIZE_M_SECTIONS
from cad.units import mm
from fmb_core.errors import ParameterError, check_length_mm

SHAPES: dict[str, type[ShapeFamily]] = {}
"""Registered families, by canonical name."""

_ALIASES: dict[str, str] = {}

MIN_SECTION = mm(10.0)
MAX_SECTION = mm(90.0)


def register_shape(name: str, aliases: tuple[str, ...] = ()):
    """Class decorator registering a ShapeFamily under `name` (and alternative spellings)."""

    def deco(cls):
        cls.name = name
        SHAPES[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
        return cls

    return deco


def canonical_shape_name(name: str) -> str:
    """Canonical family name for `name` ("3-prong" -> "three_prong"), or UnknownShapeError."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in SHAPES:
        raise UnknownShapeError(f"unknown shape {name!r}; known: {', '.join(SHAPES)}")
    return key


def get_shape(name: str, **overrides) -> ShapeFamily:
    """The FMB member of family `name`, with optional field overrides."""
    cls = SHAPES[canonical_shape_name(name)]
    return dataclasses.replace(cls.fmb(), **overrides) if overrides else cls.fmb()


@dataclasses.dataclass(frozen=True)
class ShapeFamily(ABC):
    """A peg cross-section family.

    Attributes:
        width: bounding-box size along x of the size-M section [m].
        depth: bounding-box size along y of the size-M section [m].
        corner_radius: fillet radius of convex and concave corners [m].
    """

    name: ClassVar[str] = ""
    width: float
    depth: float
    corner_radius: float = mm(1.0)

    def __post_init__(self):
        check_length_mm(f"{self.name}.width", self.width, MIN_SECTION, MAX_SECTION)
        check_length_mm(f"{self.name}.depth", self.depth, MIN_SECTION, MAX_SECTION)
        check_length_mm(f"{self.name}.corner_radius", self.corner_radius, 0.0, mm(5.0))
        self.validate()

    # -- contract -------------------------------------------------------------------------
    @abstractmethod
    def sharp_outline(self) -> Polygon:
        """Outline before filleting, at any scale; `section` fits it to width x depth."""

    @classmethod
    @abstractmethod
    def sample(cls, rng: np.random.Generator) -> ShapeFamily:
        """A new member of the family drawn from `rng`, within printable limits."""

    def validate(self) -> None:
        """Check shape parameters; raise ParameterError naming the bad one."""

    # -- shared ---------------------------------------------------------------------------
    @classmethod
    def fmb(cls) -> ShapeFamily:
        """The member used by FMB, with its measured size-M section."""
        width, depth = SIZE_M_SECTIONS[cls.name]
        return cls(width=width, depth=depth)

    def section(self, scale: float = 1.0) -> Polygon:
        """Cross-section polygon [m], bounding box (scale*width) x (scale*depth) centred on the origin.

        Args:
            scale: size factor relative to the nominal (size M) section.
        """
        w, d = self.width * scale, self.depth * scale
        poly = profile.fit_to_box(self.sharp_outline(), w, d)
        r = self.corner_radius
        poly = profile.round_corners(poly, r, r)
        if not isinstance(poly, Polygon):
            raise ParameterError(f"{self.name}: corner_radius={r * 1e3:.3g} mm splits the section")
        poly = poly.simplify(profile.CHORD_TOLERANCE / 2, preserve_topology=True)
        return profile.fit_to_box(profile.normalise(poly), w, d)

    def params(self) -> dict:
        """Family name and parameters, lengths in SI, JSON-ready."""
        return {"family": self.name, **dataclasses.asdict(self)}

    def _check_ratio(self, field: str, low: float, high: float) -> None:
        value = getattr(self, field)
        if not (low <= value <= high):
            raise ParameterError(f"{self.name}.{field}={value:.6g} is out of range [{low}, {high}]")

    def _check_int(self, field: str, low: int, high: int) -> None:
        value = getattr(self, field)
        if int(value) != value or not (low <= value <= high):
            raise ParameterError(f"{self.name}.{field}={value!r} must be an integer in [{low}, {high}]")
