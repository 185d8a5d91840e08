"""Procedural assemblies: seeded new multi-part boards in the comb's recipe, with a held-out split.

Member `procedural_<seed>` is drawn from `numpy.random.default_rng([STREAM, seed])`:

- 2-4 entering parts of different families from GRASPABLE_FAMILIES, each FMB's size-M section at a
  scale in SCALE_RANGE, all of one height in HEIGHT_RANGE (a draw whose board would not fit a
  180 x 180 mm bed is drawn again);
- a rail with one blind socket per part (25 mm deep, walls of at least WALL between sockets),
  sitting in the board's pocket;
- with probability 1/2, a lock bar whose bottom sockets go over every part's top (so it needs all
  of them in first); else the parts are the last step.

Order: rail -> parts (left to right) -> lock. Every cavity is its part's footprint offset by the
clearance, as in `cad.assembly_boards`. Split (`side`): seeds divisible by TEST_EVERY are held out
for testing, the rest are for training, so a skill can be tested on assemblies never seen.
"""

from __future__ import annotations

import re

import numpy as np
import shapely

from cad import profile
from cad.assembly import Assembly
from cad.assembly_boards import _BOARD_FLOOR, _SOCKET_FLOOR, _Builder, _rect
from cad.part import Frame, Slab
from cad.shape_family import get_shape
from cad.units import mm
from fmb_core.errors import ParameterError, check_choice, check_range

STREAM = 21
"""First word of every member's seed sequence (keeps these draws apart from other seeded ones)."""
GRASPABLE_FAMILIES = ("rectangle", "round", "oval", "hexagon", "arch", "square_circle", "double_square")
"""Families whose sides across y are flat or round, where the fingers close (three-prong and star
would be held by their tips)."""
SCALE_RANGE = (0.55, 0.75)
HEIGHT_RANGE = (mm(60.0), mm(75.0))
WALL = mm(10.0)
"""Least wall between two sockets, and from a socket to the rail's end or side [m]."""
MAX_BED = mm(180.0)
TEST_EVERY = 4
"""Seeds divisible by this are on the test side of the split."""

_NAME = re.compile(r"procedural_(?P<seed>[0-9]+)")


def is_procedural(name: str) -> bool:
    """Whether `name` names a procedural member (`procedural_<seed>`)."""
    return _NAME.fullmatch(str(name)) is not None


def side(seed: int) -> str:
    """ "test" for held-out seeds (divisible by TEST_EVERY), else "train"."""
    return "test" if int(seed) % TEST_EVERY == 0 else "train"


def split_seeds(which: str, count: int, start: int = 0) -> list[int]:
    """The first `count` seeds from `start` on side `which` ("train" or "test")."""
    check_choice("side", which, ("train", "test"))
    out, seed = [], int(start)
    while len(out) < count:
        if side(seed) == which:
            out.append(seed)
        seed += 1
    return out


def make_procedural_assembly(seed: int, clearance: float = mm(0.5), prefix: str | None = None) -> Assembly:
    """Member `procedural_<seed>` (see module docstring) at `clearance` [m] per side."""
    check_range("seed", seed, 0, 2**32 - 1)
    if int(seed) != seed:
        raise ParameterError(f"seed must be an integer, got {seed!r}", "seed", seed)
    seed = int(seed)
    rng = np.random.default_rng([STREAM, seed])
    for _ in range(100):
        n = int(rng.integers(2, 5))
        families = [str(f) for f in rng.choice(GRASPABLE_FAMILIES, size=n, replace=False)]
        sections = [get_shape(f).section(float(rng.uniform(*SCALE_RANGE))) for f in families]
        height = float(rng.uniform(*HEIGHT_RANGE))
        lock = bool(rng.integers(2))
        widths = [s.bounds[2] - s.bounds[0] for s in sections]
        rail_x = sum(widths) + WALL * (n + 1)
        rail_y = max(s.bounds[3] - s.bounds[1] for s in sections) + 2 * WALL
        if rail_x + 2 * WALL <= MAX_BED:
            break
    else:  # pragma: no cover - the ranges above always leave room
        raise ParameterError(f"procedural_{seed}: no member fits a {MAX_BED * 1e3:.0f} mm bed")
    b = _Builder(prefix or f"procedural_{seed}", clearance, mm(1.0), mm(0.25))
    xs, x = [], -rail_x / 2 + WALL
    for w in widths:
        xs.append(x + w / 2)
        x += w + WALL
    # Centre each section on its bounding box, so its frame is where the socket's centre is.
    centred = [profile.centre_on_bbox(s) for s in sections]
    sockets = [profile.translate(s, sx, 0.0) for s, sx in zip(centred, xs)]
    footprint = profile.normalise(shapely.union_all(sockets))
    rail_fp, rail_h = _rect(rail_x, rail_y), mm(40.0)
    rail = b.part(
        "rail",
        "assembly_part",
        b.sockets_on_top(rail_fp, sockets, _SOCKET_FLOOR, rail_h),
        "yellow",
        keepout=Slab(footprint, _SOCKET_FLOOR, rail_h),
    )
    colours = ("red", "green", "dark_blue", "brown")
    pegs = tuple(
        b.part(f"peg_{f}", "assembly_part", b.prism(s, height), c, {"tip": Frame((0.0, 0.0, height))})
        for f, s, c in zip(families, centred, colours)
    )
    z_peg = _BOARD_FLOOR + _SOCKET_FLOOR
    targets = {rail.name: Frame((0.0, 0.0, _BOARD_FLOOR))}
    targets.update({p.name: Frame((sx, 0.0, z_peg)) for p, sx in zip(pegs, xs)})
    requires = {rail.name: (), **{p.name: (rail.name,) for p in pegs}}
    parts = (rail, *pegs)
    if lock:
        depth = mm(10.0)
        lock_fp = _rect(rail_x, rail_y - mm(10.0))
        lock_part = b.part(
            "lock",
            "assembly_part",
            b.sockets_below(lock_fp, sockets, depth) + [Slab(lock_fp, depth, 2 * depth)],
            "purple",
            keepout=Slab(footprint, 0.0, depth),
        )
        parts = (*parts, lock_part)
        requires[lock_part.name] = tuple(p.name for p in pegs)
        targets[lock_part.name] = Frame((0.0, 0.0, z_peg + height - depth))
    board = b.board(_rect(rail_x + 2 * WALL, rail_y + 2 * WALL), rail_fp)
    return Assembly(b.prefix, board, parts, requires, targets)


def procedural_from_name(name: str, clearance: float = mm(0.5)) -> Assembly:
    """The member called `procedural_<seed>`; ParameterError for any other name."""
    match = _NAME.fullmatch(str(name))
    if not match:
        raise ParameterError(f"{name!r} is not a procedural assembly name (procedural_<seed>)", "name", name)
    return make_procedural_assembly(int(match["seed"]), clearance)
