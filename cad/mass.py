"""Mass of a printed part, estimated from its slabs and the slicer settings.

A slicer prints a part as solid perimeters (`wall` thick) and solid top and bottom skins
(`skin` thick) around a sparse infill. For a stack of extruded regions this is, per slab,
    V_shell = A * h - A_core * h,   A_core = area of the region inset by `wall`,
minus the skins at the bottom and top of the part, and
    mass = density * (V_shell + infill * V_core).
"""

from __future__ import annotations

import dataclasses

from cad import profile
from cad.part import Part
from cad.units import mm
from fmb_core.errors import check_length_mm, check_range

PLA_DENSITY = 1240.0
"""Density of PLA [kg/m^3]."""


@dataclasses.dataclass(frozen=True)
class PrintSettings:
    """Slicer settings that set the mass.

    Attributes:
        infill: sparse infill fraction in [0, 1] (0.2 = 20 %).
        density: filament density [kg/m^3].
        wall: total perimeter thickness [m] (three 0.4 mm lines by default).
        skin: solid top/bottom thickness [m].
    """

    infill: float = 0.2
    density: float = PLA_DENSITY
    wall: float = mm(1.2)
    skin: float = mm(0.8)

    def __post_init__(self):
        check_range("infill", self.infill, 0.0, 1.0)
        check_range("density", self.density, 100.0, 20000.0, unit="kg/m^3")
        check_length_mm("wall", self.wall, 0.0, mm(10.0))
        check_length_mm("skin", self.skin, 0.0, mm(10.0))


def solid_volume(part: Part) -> float:
    """Volume of the print solid from its slabs [m^3] (exact for the polygonal regions)."""
    return float(sum(s.region.area * (s.z_max - s.z_min) for s in part.slabs))


def estimate_mass(part: Part, settings: PrintSettings = PrintSettings()) -> float:
    """Estimated printed mass [kg]."""
    volume = solid_volume(part)
    core = 0.0
    for s in part.slabs:
        inner = profile.offset(s.region, -settings.wall) if settings.wall > 0 else s.region
        core += (0.0 if inner.is_empty else inner.area) * (s.z_max - s.z_min)
    # Remove solid skins at the very bottom and the very top of the part.
    for s in (part.slabs[0], max(part.slabs, key=lambda s: s.z_max)):
        inner = profile.offset(s.region, -settings.wall) if settings.wall > 0 else s.region
        core -= (0.0 if inner.is_empty else inner.area) * min(settings.skin, s.z_max - s.z_min)
    core = min(max(core, 0.0), volume)
    return settings.density * ((volume - core) + settings.infill * core)
