"""Printing on small beds: split a part that does not fit into tiles joined by printed dovetails.

A part is cut along straight seams, lines x = const and y = const across the whole part, into a
grid of tiles. A seam never passes through a hole, a pocket or the band around one (every inner
ring of every slab region, grown by `min_wall` plus room for a tab), so each hole stays in one tile
with its clearance exactly as designed. Tiles butt along the seams and are held by dovetails: a
trapezoid tab on one tile, a notch on the other offset by the tile clearance. Tabs run the full
height of the part, so tiles go together by sliding down onto each other, in any order. Tiles stay
in the part frame: put back where they lie, they rebuild the part.

Each axis is a 1D problem: the seam positions allowed are those outside the holes' projections,
and the fewest seams that keep every tile (plus a tab's depth) within the bed side are chosen,
as evenly spaced as the holes allow.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import NamedTuple

import numpy as np
import shapely
from shapely import box
from shapely.geometry import Polygon

from cad import profile
from cad.exceptions import TilingError
from cad.part import Part, Slab
from cad.printability import PrintLimits
from cad.units import mm, to_mm
from fmb_core.errors import ParameterError, check_length_mm

BED_RANGE = (mm(50.0), mm(2000.0))
"""Bed sides accepted by `parse_bed` [m]."""

TILE_CLEARANCE_RANGE = (0.0, mm(1.0))
"""Gap between a dovetail tab and its notch, per side [m]."""

DEFAULT_TILE_CLEARANCE = mm(0.2)
"""Dovetail gap per side [m]: a push fit on a 0.4 mm nozzle FDM printer."""

_STEP = mm(0.25)
"""Spacing of the seam and tab positions tried [m]."""

_ROOM_WANTED = mm(10.0)
"""A seam this far from the nearest hole band leaves a sturdy wall [m]; closer ones cost more."""


@dataclasses.dataclass(frozen=True)
class Dovetail:
    """A dovetail tab's shape [m]: `neck` wide at the seam, `end` wide `depth` across it."""

    neck: float = mm(5.0)
    end: float = mm(7.0)
    depth: float = mm(5.0)
    back: float = mm(1.0)  # overlap into its own tile, so the tab merges with it


class Joint(NamedTuple):
    """One dovetail across a seam.

    Attributes:
        axis: "x" for a seam on the line x = `at`, "y" for y = `at`.
        at: seam position [m].
        along: tab centre along the seam [m].
        male, female: (column, row) of the tile with the tab and of the one with the notch.
        tab: the tab's footprint in the part frame [m].
    """

    axis: str
    at: float
    along: float
    male: tuple[int, int]
    female: tuple[int, int]
    tab: Polygon


class TileLayout(NamedTuple):
    """Where a part is cut: seams [m] (ascending), joints, and the bed it was planned for [m]."""

    part: str
    seams_x: tuple[float, ...]
    seams_y: tuple[float, ...]
    joints: tuple[Joint, ...]
    bed: tuple[float, float]
    clearance: float


class Tile(NamedTuple):
    """A printable piece of part `of` at grid cell (column, row), in the part frame."""

    name: str
    of: str
    cell: tuple[int, int]
    part: Part


def parse_bed(text: str) -> tuple[float, float]:
    """ "220x220" [mm] -> (0.22, 0.22) [m]; ParameterError naming --bed when malformed or out of range."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        sides = tuple(float(p) for p in parts)
    except ValueError:
        sides = ()
    if len(sides) != 2:
        raise ParameterError(f"--bed {text!r}: expected WIDTHxDEPTH in mm, e.g. 220x220")
    return tuple(check_length_mm(f"--bed {n}", mm(v), *BED_RANGE) for n, v in zip(("width", "depth"), sides))


def footprint(part: Part) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) of the part's slabs [m]."""
    b = np.array([s.region.bounds for s in part.slabs])
    return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())


def fits(size: tuple[float, float], bed: tuple[float, float]) -> bool:
    """Whether a (width, depth) [m] footprint fits the bed, either way round."""
    (w, d), (bw, bd) = size, bed
    return (w <= bw + 1e-9 and d <= bd + 1e-9) or (w <= bd + 1e-9 and d <= bw + 1e-9)


def no_seam_zone(part: Part, margin: float):
    """Every hole and pocket of every slab, grown by `margin` [m]: no seam may cross it."""
    rings = [Polygon(r) for s in part.slabs for p in profile.polygons(s.region) for r in p.interiors]
    if not rings:
        return Polygon()
    return shapely.union_all(rings).buffer(margin, quad_segs=4)


def seam_candidates(lo: float, hi: float, zone, axis: int, edge: float) -> np.ndarray:
    """Seam positions [m] in [lo + edge, hi - edge] on a `_STEP` grid whose line misses `zone`.

    A full-length line x = p (axis 0) meets a region exactly where p is in the x-projection of
    one of its polygons, so only those intervals are excluded.
    """
    grid = np.arange(lo + edge, hi - edge + 1e-12, _STEP)
    ok = np.ones(len(grid), dtype=bool)
    for poly in profile.polygons(zone) if not zone.is_empty else []:
        b = poly.bounds
        ok &= ~((grid >= b[axis]) & (grid <= b[axis + 2]))
    return grid[ok]


def choose_seams(
    lo: float, hi: float, candidates: np.ndarray, limit: float, even: bool = True
) -> tuple[float, ...] | None:
    """The fewest seams from `candidates` that keep every piece of [lo, hi] within `limit` [m]; None
    when no choice works. `even`: near evenly spaced and away from the holes' bands where the
    candidates allow, else each as far as it can reach from the last."""
    greedy, pos = [], lo
    while hi - pos > limit + 1e-12:
        reach = candidates[(candidates > pos + 1e-12) & (candidates <= pos + limit + 1e-12)]
        if not len(reach):
            return None
        pos = float(reach.max())
        greedy.append(pos)
    n = len(greedy)
    if not even:
        return tuple(greedy)
    # Near the even position, but up to _ROOM_WANTED away from holes (a sturdier wall), worth twice the shift.
    cost = -2.0 * np.minimum(_room(candidates), _ROOM_WANTED)
    even = [
        float(candidates[np.argmin(abs(candidates - (lo + (hi - lo) * (i + 1) / (n + 1))) + cost)]) for i in range(n)
    ]
    edges = np.array([lo, *even, hi])
    if np.all(np.diff(edges) > 0) and np.all(np.diff(edges) <= limit + 1e-12):
        return tuple(even)
    return tuple(greedy)


def _room(candidates: np.ndarray) -> np.ndarray:
    """Distance [m] from each candidate to the nearest excluded stretch between candidates."""
    gap = np.flatnonzero(np.diff(candidates) > 1.5 * _STEP)
    bounds = np.concatenate([candidates[gap], candidates[gap + 1]])
    if not len(bounds):
        return np.full(len(candidates), np.inf)
    return np.abs(candidates[:, None] - bounds[None, :]).min(axis=1)


def smallest_limit(lo: float, hi: float, candidates: np.ndarray) -> float:
    """Smallest piece length [m] (to `_STEP`) for which `choose_seams` finds seams."""
    low, high = 0.0, hi - lo  # high always works (no seam)
    while high - low > _STEP:
        mid = (low + high) / 2
        low, high = (low, mid) if choose_seams(lo, hi, candidates, mid) is not None else (mid, high)
    return high


def plan_tiles(
    part: Part,
    bed: tuple[float, float],
    clearance: float = DEFAULT_TILE_CLEARANCE,
    limits: PrintLimits = PrintLimits(),
    dovetail: Dovetail = Dovetail(),
) -> TileLayout | None:
    """Where to cut `part` for `bed` (width, depth) [m]; None when it fits whole.

    Raises TilingError naming the part and the smallest bed that works when no layout fits.
    """
    check_length_mm("tile clearance", clearance, *TILE_CLEARANCE_RANGE)
    bounds = footprint(part)
    x0, y0, x1, y1 = bounds
    if fits((x1 - x0, y1 - y0), bed):
        return None
    zone = no_seam_zone(part, limits.min_wall + clearance + dovetail.back)  # room for a tab's back
    edge = dovetail.end + 2 * (clearance + limits.min_wall)  # thinnest tile: room for a notch
    cand = (seam_candidates(x0, x1, zone, 0, edge), seam_candidates(y0, y1, zone, 1, edge))
    material = shapely.intersection_all([s.region for s in part.slabs])
    shapely.prepare(material)
    allowance = dovetail.depth + clearance  # a tab reaching out of one side of a tile

    def attempt(bed: tuple[float, float]) -> tuple[TileLayout | None, str]:
        options = set()
        for side_x, side_y in {tuple(bed), tuple(bed[::-1])}:
            for even, tabs in itertools.product((True, False), (1, 2)):  # a middle tile may have tabs on both sides
                room = tabs * allowance
                sx = () if x1 - x0 <= side_x + 1e-9 else choose_seams(x0, x1, cand[0], side_x - room, even)
                sy = () if y1 - y0 <= side_y + 1e-9 else choose_seams(y0, y1, cand[1], side_y - room, even)
                if sx is not None and sy is not None:
                    options.add(((len(sx) + 1) * (len(sy) + 1), tabs, sx, sy))
        reason = _why(*cand)
        for _, _, sx, sy in sorted(options):
            try:
                joints = _place_joints(material, bounds, sx, sy, clearance, limits, dovetail)
            except _NoRoom as e:
                reason = str(e)
                continue
            if not _tiles_fit(bounds, sx, sy, joints, bed):
                reason = "tabs on both sides make a tile larger than the bed"
                continue
            return TileLayout(part.name, tuple(sx), tuple(sy), joints, tuple(bed), clearance), reason
        return None, reason

    layout, reason = attempt(bed)
    if layout is not None:
        return layout
    # Smallest bed: from each axis's lower bound, grow both sides until a layout (dovetails included) works.
    need = [min(hi - lo, smallest_limit(lo, hi, c) + allowance) for lo, hi, c in ((x0, x1, cand[0]), (y0, y1, cand[1]))]
    step = mm(1.0)
    while attempt(tuple(need))[0] is None:
        need = [min(n + step, extent) for n, extent in zip(need, (x1 - x0, y1 - y0))]
    raise TilingError(
        f"{part.name}: no tile layout fits a {_mm(bed[0])} x {_mm(bed[1])} mm bed ({reason}); "
        f"smallest bed that works: {_mm(need[0], up=True)} x {_mm(need[1], up=True)} mm"
    )


def make_tiles(part: Part, layout: TileLayout) -> list[Tile]:
    """Cut `part` as `layout` says: every slab region split by the grid, tabs added, notches cut."""
    x0, y0, x1, y1 = footprint(part)
    xs = [x0 - 1.0, *layout.seams_x, x1 + 1.0]
    ys = [y0 - 1.0, *layout.seams_y, y1 + 1.0]
    tiles = []
    for col in range(len(xs) - 1):
        for row in range(len(ys) - 1):
            cell = box(xs[col], ys[row], xs[col + 1], ys[row + 1])
            tabs = [j.tab for j in layout.joints if j.male == (col, row)]
            notches = [profile.offset(j.tab, layout.clearance) for j in layout.joints if j.female == (col, row)]
            keep = shapely.union_all([cell, *tabs])
            cut = shapely.union_all(notches) if notches else None
            slabs = []
            for slab in part.slabs:
                region = shapely.intersection(slab.region, keep)
                if cut is not None:
                    region = shapely.difference(region, cut)
                region = profile.normalise(region)
                if profile.polygons(region):
                    slabs.append(Slab(region, slab.z_min, slab.z_max))
            name = f"{part.name}_tile_c{col}r{row}"
            params = {"kind": "tile", "tile_of": part.name, "cell": [col, row]}
            tile = Part(name, "tile", tuple(slabs), tuple(slabs), params, part.colour)
            tiles.append(Tile(name, part.name, (col, row), tile))
    return tiles


def _tiles_fit(bounds, sx, sy, joints, bed) -> bool:
    """Whether every cell, with the tabs it carries, fits the bed (either way round)."""
    xs, ys = [bounds[0], *sx, bounds[2]], [bounds[1], *sy, bounds[3]]
    for col, row in itertools.product(range(len(xs) - 1), range(len(ys) - 1)):
        b = np.array(
            [(xs[col], ys[row], xs[col + 1], ys[row + 1])] + [j.tab.bounds for j in joints if j.male == (col, row)]
        )
        if not fits((b[:, 2].max() - b[:, 0].min(), b[:, 3].max() - b[:, 1].min()), bed):
            return False
    return True


class _NoRoom(Exception):
    """A seam segment has no position for a dovetail."""


def _place_joints(material, bounds, sx, sy, clearance, limits, dovetail) -> tuple[Joint, ...]:
    """Up to two dovetails on every seam segment between two tiles, clear of holes and edges."""
    x0, y0, x1, y1 = bounds
    xs, ys = [x0, *sx, x1], [y0, *sy, y1]
    margin = clearance + limits.min_wall
    end_room = dovetail.end / 2 + dovetail.depth + 2 * margin
    joints = []
    for axis, seams, across in (("x", sx, ys), ("y", sy, xs)):
        for i, at in enumerate(seams):
            for k in range(len(across) - 1):
                low, high = across[k] + end_room, across[k + 1] - end_room
                cells = ((i, k), (i + 1, k)) if axis == "x" else ((k, i), (k, i + 1))
                found = _tabs_on_segment(material, axis, at, low, high, cells, margin, dovetail)
                if not found:
                    raise _NoRoom(
                        f"no room for a dovetail on the seam {axis} = {to_mm(at):.1f} mm between "
                        f"{'y' if axis == 'x' else 'x'} = {to_mm(across[k]):.1f} and {to_mm(across[k + 1]):.1f} mm"
                    )
                joints.extend(found)
    return tuple(joints)


def _tabs_on_segment(material, axis, at, low, high, cells, margin, dovetail) -> list[Joint]:
    if high < low:
        return []
    along = np.arange(low, high + 1e-12, _STEP)
    shift = np.c_[np.zeros_like(along), along] if axis == "x" else np.c_[along, np.zeros_like(along)]  # (n, 2)
    for sign, (male, female) in ((1.0, cells), (-1.0, cells[::-1])):
        tab = _tab(axis, at, 0.0, sign, dovetail)
        room = profile.offset(tab, margin)  # offset once, then slide it along the seam
        coords = np.asarray(room.exterior.coords)
        grown = shapely.polygons(coords[None, :, :] + shift[:, None, :])
        valid = np.flatnonzero(shapely.contains(material, grown))
        if not len(valid):
            continue
        picks = {int(valid[np.argmin(abs(along[valid] - (low + (high - low) * q)))]) for q in (0.25, 0.75)}
        if len(picks) == 2 and abs(along[max(picks)] - along[min(picks)]) < dovetail.end + 2 * margin:
            picks = {min(picks)}
        return [
            Joint(axis, at, float(along[p]), male, female, _tab(axis, at, along[p], sign, dovetail))
            for p in sorted(picks)
        ]
    return []


def _tab(axis: str, at: float, along: float, sign: float, d: Dovetail) -> Polygon:
    """Dovetail footprint: `sign` +1 reaches towards +axis from the seam, -1 towards -axis."""
    local = [(-d.back, -d.neck / 2), (0.0, -d.neck / 2), (d.depth, -d.end / 2), (d.depth, d.end / 2),
             (0.0, d.neck / 2), (-d.back, d.neck / 2)]  # fmt: skip
    pts = [(at + sign * n, along + t) if axis == "x" else (along + t, at + sign * n) for n, t in local]
    return profile.normalise(Polygon(pts))


def _mm(value: float, up: bool = False) -> str:
    v = to_mm(value)
    return f"{math.ceil(v - 1e-6):d}" if up else f"{v:g}"


def _why(cand_x: np.ndarray, cand_y: np.ndarray) -> str:
    if not len(cand_x) and not len(cand_y):
        return "its holes leave no seam position in x or y"
    if not len(cand_x):
        return "its holes leave no seam position in x"
    if not len(cand_y):
        return "its holes leave no seam position in y"
    return "the seam positions its holes leave give tiles larger than the bed"
