"""Dimensions of the Functional Manipulation Benchmark object set.

Values in millimetres come from FMB's released STEP files and paper (Luo et al., 2024,
"FMB: a Functional Manipulation Benchmark for Generalizable Robotic Learning",
https://functional-manipulation-benchmark.github.io). They are converted to metres here, once.

Size factors: FMB's size L pegs are about 1.235x wider than size M. We take S = M / 1.235 so
that the three sizes form a geometric series (S : M : L = 0.810 : 1 : 1.235): each step changes
every cross-section dimension by the same ratio, which keeps the step in difficulty even and the
smallest features of size S (3-prong, star tips) above the printable minimum.
"""

from __future__ import annotations

from cad.units import mm

# Size-M cross-sections (width x depth) measured from FMB's STEP files [m].
SIZE_M_SECTIONS: dict[str, tuple[float, float]] = {
    "rectangle": mm((40.3, 25.9)),
    "round": mm((40.3, 40.3)),
    "oval": mm((43.2, 28.8)),
    "hexagon": mm((41.4, 36.6)),  # across corners (x) x across flats (y)
    "arch": mm((48.0, 28.8)),
    "square_circle": mm((52.8, 19.8)),
    "double_square": mm((53.0, 20.4)),
    "three_prong": mm((52.8, 49.3)),
    "star": mm((44.0, 42.1)),
}

SIZE_FACTORS: dict[str, float] = {"S": 1.0 / 1.235, "M": 1.0, "L": 1.235}
"""Cross-section scale of each size relative to size M (see module docstring)."""

LENGTHS: dict[str, float] = {"short": mm(100.0), "long": mm(150.0)}
"""Peg lengths [m]."""

BOARD_SIZE = mm((230.0, 230.0, 50.0))
"""Single-object board outline x, y and height [m]."""

BOARD_PITCH = mm(70.0)
"""Hole grid pitch of the single-object boards [m]."""

FIXTURE_SIZE = mm((107.7, 120.0, 76.3))
"""Reorientation fixture outline x, y and height [m]."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "brown": (121, 85, 61),
    "red": (200, 30, 35),
    "jeans_red": (160, 50, 60),
    "yellow": (240, 200, 40),
    "green": (60, 150, 70),
    "jeans_blue": (80, 110, 150),
    "dark_blue": (30, 45, 110),
    "purple": (110, 60, 140),
}
"""FMB's eight filament colours, as sRGB 0-255 approximations of the printed parts."""
