"""The assembly sheet of a tiled set: one PNG page showing how each part's tiles go together.

One panel per tiled part, seen from above in the part frame: the tiles drawn apart (exploded by a
fixed gap along the grid) in their own colours, holes and pockets as outlines, dovetail tabs and
notches where the tiles meet, each tile labelled with its file name and size, and arrows from tab
to notch. A footer says how to join them: every dovetail runs the full height, so each tile
slides down onto its neighbours, in any order.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cad.profile import polygons
from cad.units import to_mm

_EXPLODE = 0.012
"""Gap drawn between neighbouring tiles [m]."""

_DRAW_TOLERANCE = 2e-4
"""Outlines are simplified to this [m] for drawing."""

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def render_tile_sheet(
    tiled: list, out: Path, bed: tuple[float, float], size_px: tuple[int, int] = (1754, 1240)
) -> Path:
    """Draw the sheet for `tiled`, a list of (part, TileLayout, tiles), to `out` (PNG, A4 landscape
    at 150 dpi by default); `bed` (width, depth) [m] is printed in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure
    from matplotlib.path import Path as MplPath

    dpi = 150
    fig = Figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    n = len(tiled)
    cols = math.ceil(math.sqrt(n * 1.4))
    rows = math.ceil(n / cols)
    total = sum(len(t) for _, _, t in tiled)
    fig.suptitle(
        f"Tiles for a {to_mm(bed[0]):g} x {to_mm(bed[1]):g} mm bed: {n} parts in {total} tiles "
        "(top view, part frame, drawn apart)",
        fontsize=12,
    )
    for k, (part, layout, tiles) in enumerate(tiled):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{part.name}: {len(tiles)} tiles, {len(layout.joints)} dovetails", fontsize=9)
        paths, colours = [], []
        for i, tile in enumerate(tiles):
            dx, dy = _shift(tile.cell, layout)
            top = tile.part.slabs[-1].region.simplify(_DRAW_TOLERANCE)  # a drawing needs no 0.05 mm chords
            for poly in polygons(top):
                rings = [np.asarray(poly.exterior.coords), *(np.asarray(r.coords) for r in poly.interiors)]
                verts = np.vstack([to_mm(r + (dx, dy)) for r in rings])
                codes = np.concatenate([[1] + [2] * (len(r) - 2) + [79] for r in rings])  # MOVETO, LINETO, CLOSEPOLY
                paths.append(MplPath(verts, codes))
                colours.append(_PALETTE[i % len(_PALETTE)])
            c = tile.part.slabs[0].region.centroid
            b = np.array([p.bounds for p in polygons(tile.part.slabs[0].region)])
            w, d = b[:, 2].max() - b[:, 0].min(), b[:, 3].max() - b[:, 1].min()
            ax.text(
                to_mm(c.x + dx), to_mm(c.y + dy), f"c{tile.cell[0]}r{tile.cell[1]}\n{to_mm(w):.0f} x {to_mm(d):.0f}",
                ha="center", va="center", fontsize=6, bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 1},
            )  # fmt: skip
        ax.add_collection(PathCollection(paths, facecolors=colours, edgecolors="black", linewidths=0.4))
        # Arrows from each tab (on its tile, drawn apart) to its notch, in one call.
        starts = np.array([np.add((j.tab.centroid.x, j.tab.centroid.y), _shift(j.male, layout)) for j in layout.joints])
        ends = np.array([np.add((j.tab.centroid.x, j.tab.centroid.y), _shift(j.female, layout)) for j in layout.joints])
        if len(starts):
            u, v = to_mm(ends - starts).T
            x, y = to_mm(starts).T
            ax.quiver(x, y, u, v, angles="xy", scale_units="xy", scale=1, width=0.004, headwidth=4, color="black")
        ax.autoscale_view()
    fig.text(
        0.5, 0.02,
        "Files: <fmt>/tiles/<part>_tile_c<column>r<row>.<fmt>. Print each tile flat as exported. Join: every dovetail "
        "runs the full height; lay one tile down, slide each neighbour's tab (arrow: tab -> notch) down into its "
        "notch, in any order.\nSeams never cross a hole or its clearance band; glue the seams if the board "
        "must not flex.",
        ha="center", va="bottom", fontsize=8, wrap=True,
    )  # fmt: skip
    out = Path(out)
    fig.savefig(out, dpi=dpi, facecolor="white")
    return out


def _shift(cell: tuple[int, int], layout) -> tuple[float, float]:
    """Where a tile at `cell` is drawn, relative to where it lies in the part [m]."""
    return (cell[0] - len(layout.seams_x) / 2) * _EXPLODE, (cell[1] - len(layout.seams_y) / 2) * _EXPLODE
