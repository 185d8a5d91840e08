"""Multi-object assembly: a board and interlocking parts inserted in a fixed order.

The "bridge" assembly (after FMB's multi-object tasks) has four parts:

    1. base    a 120 x 60 x 40 mm block, into the board's pocket; it has two blind sockets
    2. pillar_square  a 25 mm square pillar, into the base's left socket
    3. pillar_round   a 25 mm round pillar, into the base's right socket
    4. bridge  a beam whose two sockets (open at its bottom) slide over both pillar tops

The base must be in before either pillar (the sockets are in the base) and both pillars before
the bridge (it rests on them): the order is fixed as listed, and `requires` records it. Every
cavity is its part's footprint offset by the clearance. All frames are in the assembly board's
frame (origin at the centre of its bottom face, +z up); a part's target is the pose of its own
frame origin (centre of its bottom face) when assembled.
"""

from __future__ import annotations

import dataclasses

import shapely
from shapely import box

from cad import profile
from cad.part import Frame, Part, Slab, stepped_slabs
from cad.units import mm
from fmb_core.errors import check_length_mm

_BOARD = mm((230.0, 230.0, 30.0))
_BOARD_FLOOR = mm(10.0)
_BASE = mm((120.0, 60.0, 40.0))
_SOCKET_FLOOR = mm(15.0)
_PILLAR_SIDE = mm(25.0)
_PILLAR_HEIGHT = mm(70.0)
_PILLAR_X = mm(35.0)
_BRIDGE = mm((120.0, 35.0, 20.0))
_BRIDGE_SOCKET_DEPTH = mm(10.0)
_CORNER = mm(1.0)


@dataclasses.dataclass(frozen=True)
class Assembly:
    """A board, its parts, and how they go together.

    Attributes:
        name: assembly name.
        board: the part that holds the others.
        parts: parts in insertion order.
        requires: part name -> names that must be in place first.
        targets: part name -> pose of the part frame in the board frame when assembled.
    """

    name: str
    board: Part
    parts: tuple[Part, ...]
    requires: dict[str, tuple[str, ...]]
    targets: dict[str, Frame]

    @property
    def order(self) -> list[str]:
        """Part names in insertion order."""
        return [p.name for p in self.parts]


def _chamfered_cavity_slabs(outline, cavity_at, z0: float, z1: float, chamfer: float, layer: float, top: bool):
    """Slabs of `outline` minus a cavity over [z0, z1], chamfered at the open end."""

    def region(f: float):
        return profile.normalise(outline.difference(cavity_at(f)))

    if top:
        body = [Slab(region(0.0), z0, z1 - chamfer)]
        return body + stepped_slabs(region, z1 - chamfer, chamfer, layer)
    body = [Slab(region(0.0), z0 + chamfer, z1)]
    return stepped_slabs(lambda f: region(1.0 - f), z0, chamfer, layer) + body


def make_bridge_assembly(
    clearance: float = mm(0.5), chamfer: float = mm(1.0), layer_height: float = mm(0.25), prefix: str = "bridge"
) -> Assembly:
    """Build the bridge assembly with `clearance` [m] per side in every joint."""
    check_length_mm("clearance", clearance, 0.0, mm(3.0))
    check_length_mm("chamfer", chamfer, 0.0, mm(3.0))
    c = clearance

    def rect(lx, ly, r=_CORNER):
        return profile.round_corners(box(-lx / 2, -ly / 2, lx / 2, ly / 2), r, 0.0)

    square = rect(_PILLAR_SIDE, _PILLAR_SIDE)
    disc = profile.circle(_PILLAR_SIDE / 2)
    base_fp = rect(_BASE[0], _BASE[1], mm(3.0))
    sockets = [profile.translate(square, -_PILLAR_X, 0.0), profile.translate(disc, _PILLAR_X, 0.0)]

    def cavity(shapes):
        return lambda f: profile.normalise(shapely.union_all([profile.offset(s, c + chamfer * f) for s in shapes]))

    # Board: solid floor, then a pocket for the base.
    board_outline = rect(_BOARD[0], _BOARD[1], mm(3.0))
    board_slabs = [Slab(board_outline, 0.0, _BOARD_FLOOR)] + _chamfered_cavity_slabs(
        board_outline, cavity([base_fp]), _BOARD_FLOOR, _BOARD[2], chamfer, layer_height, top=True
    )
    # Base: solid below the sockets.
    base_slabs = [Slab(base_fp, 0.0, _SOCKET_FLOOR)] + _chamfered_cavity_slabs(
        base_fp, cavity(sockets), _SOCKET_FLOOR, _BASE[2], chamfer, layer_height, top=True
    )

    def pillar(section):
        body = [Slab(section, 0.0, _PILLAR_HEIGHT - chamfer)]
        return body + stepped_slabs(
            lambda f: profile.offset(section, -chamfer * f), _PILLAR_HEIGHT - chamfer, chamfer, layer_height
        )

    bridge_fp = rect(_BRIDGE[0], _BRIDGE[1], mm(3.0))
    bridge_slabs = _chamfered_cavity_slabs(
        bridge_fp, cavity(sockets), 0.0, _BRIDGE_SOCKET_DEPTH, chamfer, layer_height, top=False
    ) + [Slab(bridge_fp, _BRIDGE_SOCKET_DEPTH, _BRIDGE[2])]

    def part(name, kind, slabs, colour, frames=None, keepout=None):
        full = f"{prefix}_{name}"
        # Collision: the print slabs with chamfers merged into one slab at mid-chamfer.
        return Part(
            full,
            kind,
            tuple(slabs),
            tuple(_coarse(slabs)),
            {"kind": kind, "assembly": prefix, "clearance": c},
            colour,
            frames or {},
            keepout,
        )

    z_base = _BOARD_FLOOR
    z_pillar = z_base + _SOCKET_FLOOR
    z_bridge = z_pillar + _PILLAR_HEIGHT - _BRIDGE_SOCKET_DEPTH
    board = part(
        "board",
        "assembly_board",
        board_slabs,
        "jeans_blue",
        {"slot_base": Frame((0.0, 0.0, z_base))},
        keepout=Slab(base_fp, _BOARD_FLOOR, _BOARD[2]),
    )
    parts = (
        part(
            "base",
            "assembly_part",
            base_slabs,
            "yellow",
            {
                "socket_square": Frame((-_PILLAR_X, 0.0, _SOCKET_FLOOR)),
                "socket_round": Frame((_PILLAR_X, 0.0, _SOCKET_FLOOR)),
            },
            keepout=Slab(profile.normalise(sockets[0].union(sockets[1])), _SOCKET_FLOOR, _BASE[2]),
        ),
        part("pillar_square", "assembly_part", pillar(square), "red", {"tip": Frame((0.0, 0.0, _PILLAR_HEIGHT))}),
        part("pillar_round", "assembly_part", pillar(disc), "green", {"tip": Frame((0.0, 0.0, _PILLAR_HEIGHT))}),
        part(
            "bridge",
            "assembly_part",
            bridge_slabs,
            "purple",
            keepout=Slab(profile.normalise(sockets[0].union(sockets[1])), 0.0, _BRIDGE_SOCKET_DEPTH),
        ),
    )
    names = [p.name for p in parts]
    requires = {names[0]: (), names[1]: (names[0],), names[2]: (names[0],), names[3]: (names[1], names[2])}
    targets = {
        names[0]: Frame((0.0, 0.0, z_base)),
        names[1]: Frame((-_PILLAR_X, 0.0, z_pillar)),
        names[2]: Frame((_PILLAR_X, 0.0, z_pillar)),
        names[3]: Frame((0.0, 0.0, z_bridge)),
    }
    return Assembly(prefix, board, parts, requires, targets)


def _coarse(slabs: list[Slab]) -> list[Slab]:
    """Merge runs of thin chamfer slabs (< 1 mm) into one slab with their middle region."""
    out: list[Slab] = []
    run: list[Slab] = []
    for s in slabs + [None]:
        if s is not None and s.z_max - s.z_min < mm(1.0) - 1e-12:
            run.append(s)
            continue
        if run:
            mid = run[len(run) // 2]
            out.append(Slab(mid.region, run[0].z_min, run[-1].z_max))
            run = []
        if s is not None:
            out.append(s)
    return out
