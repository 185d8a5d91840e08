"""Contact-sheet previews: a labelled grid of shaded 3D views of parts, as one PNG.

Parts are drawn from their slabs, not their meshes: each slab is a prism, so a view needs only
its visible side walls (one quad per ring edge facing the camera) and its top face. The view is a
fixed orthographic projection from above (see :data:`VIEW_AZIMUTH`, :data:`VIEW_ELEVATION`).
Because the camera looks down, nothing below a slab's top can hide anything above it, so slabs
are drawn bottom to top, and within a slab: hole walls (clipped to the hole's top outline, so holes
read as holes), outer walls back to front (painter's algorithm), then the top face.

Thin consecutive slabs that look alike (a chamfer printed as 0.25 mm steps) are drawn as one.
All tiles share one matplotlib Axes in pixel coordinates, which keeps a 60-part sheet fast.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import shapely

from cad.fmb_reference import COLOURS
from cad.part import Part
from cad.profile import polygons
from fmb_core.errors import ParameterError, check_range

VIEW_AZIMUTH = math.radians(-55.0)
"""Camera direction about +z, from +x [rad]: the camera sits front-right of the part (-y, +x)."""

VIEW_ELEVATION = math.radians(35.0)
"""Camera direction above the x-y plane [rad]."""

MERGE_TOLERANCE = 0.02
"""Consecutive slabs whose regions differ by less than this fraction of the part's largest
dimension (Hausdorff distance) are drawn as one."""

_EYE = np.array(
    [
        math.cos(VIEW_ELEVATION) * math.cos(VIEW_AZIMUTH),
        math.cos(VIEW_ELEVATION) * math.sin(VIEW_AZIMUTH),
        math.sin(VIEW_ELEVATION),
    ]
)  # unit vector from the part towards the camera; also the depth axis (larger = nearer)
_RIGHT = np.array([-math.sin(VIEW_AZIMUTH), math.cos(VIEW_AZIMUTH), 0.0])
_UP = np.cross(_EYE, _RIGHT)
_PROJECT = np.stack([_RIGHT, _UP], axis=1)  # (3, 2): world [m] -> screen [m]
_LIGHT = -0.55 * _RIGHT + 0.35 * _EYE + 0.75 * np.array([0.0, 0.0, 1.0])
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)
_AMBIENT = 0.42
_HOLE_SHADE = 0.6  # extra darkening of walls seen through a hole (cheap ambient occlusion)
_GREY = (150, 150, 150)
_TITLE_PX = 40  # height of the title band [px], when a title is given
_LABEL_FRACTION = 0.2  # bottom part of a tile that holds the label


class _Layer(NamedTuple):
    """Polygons of one fill style, already projected to the screen [m].

    Attributes:
        polys: list of (k, 2) float screen outlines [m]. For tops, each entry is a list of rings
            (exterior first, then holes).
        colours: (n, 3) float RGB in [0, 1], one per polygon.
        clip: (k, 2) float screen ring [m] to clip to, or None.
        kind: "walls" or "top".
    """

    polys: list
    colours: np.ndarray
    clip: np.ndarray | None
    kind: str


def render_contact_sheet(
    parts: list[Part],
    out_png: Path,
    columns: int | None = None,
    tile_px: int = 220,
    title: str = "",
) -> Path:
    """Render a labelled grid of shaded 3D views of `parts` to a PNG.

    Each tile is tile_px x tile_px pixels: the part, scaled to fit, above a label with its name
    and bounding box in mm. The image is columns * tile_px wide and rows * tile_px (+ 40 px for a
    title) high. Output is byte-for-byte reproducible.

    Args:
        parts: the parts, drawn row by row.
        out_png: PNG path; parent folders are created.
        columns: tiles per row; default ceil(sqrt(len(parts))).
        tile_px: tile side [px], in [64, 1024].
        title: text above the grid; "" for none.

    Returns:
        out_png.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not parts:
        raise ParameterError("parts must contain at least one Part, got an empty list")
    tile_px = int(check_range("tile_px", tile_px, 64, 1024))
    columns = columns if columns is not None else math.ceil(math.sqrt(len(parts)))
    columns = int(check_range("columns", columns, 1, 1000))
    rows = math.ceil(len(parts) / columns)
    title_px = _TITLE_PX if title else 0
    width, height = columns * tile_px, rows * tile_px + title_px

    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    font = 8.0 * tile_px / 220
    for i, part in enumerate(parts):
        col, row = i % columns, i // columns
        x0, y_top = col * tile_px, height - title_px - row * tile_px
        label_h = _LABEL_FRACTION * tile_px
        pad = 0.06 * tile_px
        render_part(part, ax, box=(x0 + pad, y_top - tile_px + label_h, x0 + tile_px - pad, y_top - pad))
        ax.text(
            x0 + tile_px / 2,
            y_top - tile_px + label_h / 2,
            _label(part),
            ha="center",
            va="center",
            fontsize=font,
            linespacing=1.3,
            clip_on=False,
        )
    if title:
        ax.text(width / 2, height - title_px / 2, title, ha="center", va="center", fontsize=1.6 * font)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=dpi, format="png", metadata={"Software": None})
    return out_png


def render_part(part: Part, ax, box: tuple[float, float, float, float] | None = None) -> None:
    """Draw a shaded 3D view of `part` into a matplotlib Axes.

    Args:
        part: the part.
        ax: matplotlib Axes.
        box: (x0, y0, x1, y1) in data coordinates to fit the view into, keeping its aspect; None
            draws in screen metres and sets the Axes limits (equal aspect).
    """
    layers = _layers(part)
    pts = np.vstack(
        [p for layer in layers if layer.kind == "walls" for p in layer.polys]
        + [r for layer in layers if layer.kind == "top" for rings in layer.polys for r in rings]
    )
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    if box is None:
        scale, offset = 1.0, np.zeros(2)
        margin = 0.05 * float(np.max(hi - lo))
        ax.set_xlim(lo[0] - margin, hi[0] + margin)
        ax.set_ylim(lo[1] - margin, hi[1] + margin)
        ax.set_aspect("equal")
    else:
        x0, y0, x1, y1 = box
        scale = min((x1 - x0) / max(hi[0] - lo[0], 1e-12), (y1 - y0) / max(hi[1] - lo[1], 1e-12))
        offset = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - scale * (lo + hi) / 2
    for layer in layers:
        _emit(ax, layer, scale, offset)


def _emit(ax, layer: _Layer, scale: float, offset: np.ndarray) -> None:
    """Add one layer to `ax`, mapped by screen [m] * scale + offset."""
    from matplotlib.collections import PathCollection, PolyCollection
    from matplotlib.path import Path as MplPath

    if layer.kind == "walls":
        verts = [p * scale + offset for p in layer.polys]
        art = PolyCollection(verts, facecolors=layer.colours, edgecolors=layer.colours, linewidths=0.3)
    else:
        paths = []
        for rings in layer.polys:
            v = np.vstack([np.vstack([r, r[:1]]) * scale + offset for r in rings])
            codes = np.concatenate(
                [[MplPath.MOVETO] + [MplPath.LINETO] * (len(r) - 1) + [MplPath.CLOSEPOLY] for r in rings]
            )
            paths.append(MplPath(v, codes))
        art = PathCollection(paths, facecolors=layer.colours, edgecolors=layer.colours * 0.55, linewidths=0.5)
    if layer.clip is not None:
        art.set_clip_path(MplPath(layer.clip * scale + offset, closed=False), ax.transData)
    ax.add_collection(art, autolim=False)


def _layers(part: Part) -> list[_Layer]:
    """The part's display list in drawing order, projected to the screen [m]."""
    base = np.asarray(COLOURS.get(part.colour, _GREY), dtype=float) / 255.0
    layers = []
    for region, z0, z1 in _draw_slabs(part):
        outer, tops = [], []
        for poly in polygons(region):
            tops.append([_ring(r) for r in [poly.exterior, *poly.interiors]])
            outer.append(_ring(poly.exterior))
            for hole in poly.interiors:
                ring = _ring(hole)
                walls = _walls([ring], z0, z1, base, _HOLE_SHADE)
                if walls is not None:
                    clip = np.c_[ring, np.full(len(ring), z1)] @ _PROJECT
                    layers.append(walls._replace(clip=clip))
        walls = _walls(outer, z0, z1, base, 1.0)
        if walls is not None:
            layers.append(walls)
        proj = [[np.c_[r, np.full(len(r), z1)] @ _PROJECT for r in rings] for rings in tops]
        top_colour = base * (_AMBIENT + (1 - _AMBIENT) * max(0.0, _LIGHT[2]))
        layers.append(_Layer(proj, np.tile(top_colour, (len(proj), 1)), None, "top"))
    return layers


def _walls(rings: list[np.ndarray], z0: float, z1: float, base: np.ndarray, shade: float) -> _Layer | None:
    """Camera-facing side walls of `rings` between z0 and z1, sorted back to front.

    Args:
        rings: list of (k, 2) float rings [m], solid on the left of the walk (shapely `orient`).
        z0, z1: bottom and top of the walls [m].
        base: (3,) float RGB in [0, 1].
        shade: brightness factor.
    """
    a = np.vstack(rings)
    b = np.vstack([np.roll(r, -1, axis=0) for r in rings])
    d = b - a
    normal = np.c_[d[:, 1], -d[:, 0], np.zeros(len(d))]  # outward: right of the walk
    length = np.linalg.norm(normal, axis=1)
    keep = length > 1e-12
    normal, a, b = normal[keep] / length[keep, None], a[keep], b[keep]
    facing = normal @ _EYE > 1e-9
    if not np.any(facing):
        return None
    a, b, normal = a[facing], b[facing], normal[facing]
    n = len(a)
    quads = np.empty((n, 4, 3))
    quads[:, 0, :2], quads[:, 1, :2], quads[:, 2, :2], quads[:, 3, :2] = a, b, b, a
    quads[:, :, 2] = [z0, z0, z1, z1]
    order = np.argsort(quads.mean(axis=1) @ _EYE, kind="stable")  # far first
    lit = _AMBIENT + (1 - _AMBIENT) * np.clip(normal @ _LIGHT, 0.0, 1.0)
    colours = np.clip(base[None, :] * (shade * lit)[:, None], 0.0, 1.0)
    screen = quads @ _PROJECT
    return _Layer(list(screen[order]), colours[order], None, "walls")


def _draw_slabs(part: Part) -> list[tuple[object, float, float]]:
    """(region, z_min, z_max) to draw, bottom to top, with look-alike neighbours merged [m]."""
    slabs = sorted(part.slabs, key=lambda s: (s.z_min, s.z_max))
    dims = _extent(part)
    tol = MERGE_TOLERANCE * max(dims)
    out: list[list] = []
    for slab in slabs:
        if out and abs(slab.z_min - out[-1][2]) < 1e-9 and _close(out[-1][0], slab.region, tol):
            out[-1][2] = slab.z_max
        else:
            out.append([slab.region, slab.z_min, slab.z_max])
    return [tuple(o) for o in out]


def _close(a, b, tol: float) -> bool:
    """Whether regions `a` and `b` differ by less than `tol` [m] everywhere."""
    if len(polygons(a)) != len(polygons(b)):
        return False
    return all(abs(p - q) < tol for p, q in zip(a.bounds, b.bounds)) and (
        shapely.hausdorff_distance(a.boundary, b.boundary) < tol
    )


def _ring(ring) -> np.ndarray:
    """(k, 2) float vertices of a shapely ring without the closing repeat [m]."""
    return np.asarray(ring.coords)[:-1, :2]


def _extent(part: Part) -> tuple[float, float, float]:
    """Bounding box size x, y, z of the part's slabs [m]."""
    b = np.array([s.region.bounds for s in part.slabs])  # (n, 4): x0, y0, x1, y1
    x0, y0, x1, y1 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    z0 = min(s.z_min for s in part.slabs)
    return x1 - x0, y1 - y0, part.height - z0


def _label(part: Part) -> str:
    """Tile label: name, then bounding box in mm."""
    dims = "x".join(_fmt_mm(v * 1e3) for v in _extent(part))
    return f"{part.name}\n{dims} mm"


def _fmt_mm(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}".rstrip("0").rstrip(".")
