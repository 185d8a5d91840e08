"""FMB's other two multi-object assemblies, as documented interpretations, and the registry of all three.

What FMB publishes: three multi-object assembly boards, each a board with several interlocking
parts put in in a set order (Luo et al., 2024). ManiSkill's port of FMB's first assembly
(haosulab/ManiSkill, mani_skill/envs/tasks/fmb/fmb.py) shows its make-up: a board, a centre peg,
two U-shaped parts either side of it (68 mm off centre) and a bridge laid over them; `bridge` in
`cad.assembly` is our interpretation of that one. We found no published dimensions or pictures of
the second and third boards' parts (no released mesh in that port, nothing in the papers' text),
so both are assumed, in the bridge's style:

- every joint is vertical (parts go in top-down, standing on their bottom face as printed);
- every cavity is the entering part's footprint offset by the same clearance as the pegs'
  holes, with the same 1 mm entry chamfer printed in layer steps;
- the entering sections are FMB's own peg families at a reduced scale (`SECTION_SCALE`), so the
  shapes are FMB's while three or four parts fit one board;
- boards are 30 mm tall with a 10 mm floor (as the bridge's), 150 x 150 mm (tower) and
  170 x 90 mm (comb): every part of both prints whole on a 180 x 180 mm bed (no tiles).

"tower" (assumed FMB assembly 2: a vertical chain, each part held by the one below it):

    1. base   a 90 x 60 x 40 mm block, into the board's pocket; a blind hexagon socket, 25 mm deep
    2. post   a hexagon prism (FMB's hexagon at 0.75), 70 mm tall, into the base's socket
    3. cap    a 60 x 40 x 30 mm block whose 10 mm hexagon socket (open below) goes over the post's
              top; a blind round socket, 15 mm deep, in its top
    4. pin    a round prism (FMB's round at 0.7), 60 mm tall, into the cap's top socket

"comb" (assumed FMB assembly 3: three different sections locked by one bar):

    1. rail   a 150 x 50 x 40 mm block, into the board's slot; three blind sockets, 25 mm deep,
              45 mm apart: oval, rectangle, arch (FMB's sections at 0.7)
    2-4. peg_oval, peg_rectangle, peg_arch   70 mm prisms, into the rail's sockets (any order)
    5. lock   a 150 x 40 x 20 mm bar whose three 10 mm sockets (open below) go over the pegs' tops

Frames are as in `cad.assembly`: the board frame's origin is the centre of its bottom face, +z up;
a part's target is the pose of its own frame (centre of its bottom face) when assembled.
"""

from __future__ import annotations

import shapely
from shapely import box

from cad import profile
from cad.assembly import Assembly, _chamfered_cavity_slabs, _coarse, make_bridge_assembly
from cad.part import Frame, Part, Slab, stepped_slabs
from cad.shape_family import get_shape
from cad.units import mm
from fmb_core.errors import check_length_mm

SECTION_SCALE = {"hexagon": 0.75, "round": 0.7, "oval": 0.7, "rectangle": 0.7, "arch": 0.7}
"""Scale of FMB's size-M section for each entering part's footprint (assumed)."""

REVISION = 4
"""Design revision of the tower and comb, recorded in each part's params (a file's provenance;
the simulator's asset cache keys on the params and on the cad package's source, so a changed
dimension regenerates the assets whether or not this is raised)."""

_BOARD_HEIGHT = mm(30.0)
_BOARD_FLOOR = mm(10.0)
_SOCKET_FLOOR = mm(15.0)


def _rect(lx: float, ly: float, r: float = mm(3.0)):
    """A lx x ly [m] rectangle centred on the origin, corners rounded to `r` [m]."""
    return profile.round_corners(box(-lx / 2, -ly / 2, lx / 2, ly / 2), r, 0.0)


class _Builder:
    """The shared recipe: cavities, chamfers and part records at one clearance."""

    def __init__(self, prefix: str, clearance: float, chamfer: float, layer_height: float):
        check_length_mm("clearance", clearance, 0.0, mm(3.0))
        check_length_mm("chamfer", chamfer, 0.0, mm(3.0))
        self.prefix, self.c, self.chamfer, self.layer = prefix, clearance, chamfer, layer_height

    def cavity(self, shapes):
        """Fraction along the entry chamfer -> the footprints offset by clearance (+ chamfer)."""
        c, ch = self.c, self.chamfer
        return lambda f: profile.normalise(shapely.union_all([profile.offset(s, c + ch * f) for s in shapes]))

    def sockets_on_top(self, outline, shapes, floor: float, height: float) -> list[Slab]:
        """`outline` from 0 to `height` with blind sockets from `floor` up, open at the top."""
        return [Slab(outline, 0.0, floor)] + _chamfered_cavity_slabs(
            outline, self.cavity(shapes), floor, height, self.chamfer, self.layer, top=True
        )

    def sockets_below(self, outline, shapes, depth: float) -> list[Slab]:
        """Sockets open at the bottom of `outline`, `depth` deep (the rest of the part goes on top)."""
        return _chamfered_cavity_slabs(outline, self.cavity(shapes), 0.0, depth, self.chamfer, self.layer, top=False)

    def prism(self, section, height: float) -> list[Slab]:
        """`section` extruded to `height`, its top edge chamfered (the end a socket goes over)."""
        ch = self.chamfer
        body = [Slab(section, 0.0, height - ch)]
        return body + stepped_slabs(lambda f: profile.offset(section, -ch * f), height - ch, ch, self.layer)

    def part(self, name: str, kind: str, slabs: list[Slab], colour: str, frames=None, keepout=None) -> Part:
        return Part(
            f"{self.prefix}_{name}",
            kind,
            tuple(slabs),
            tuple(_coarse(slabs)),
            {
                "kind": kind,
                "assembly": self.prefix,
                "clearance": self.c,
                "chamfer": self.chamfer,
                "layer_height": self.layer,
                "revision": REVISION,
            },
            colour,
            frames or {},
            keepout,
        )

    def board(self, outline, pocket) -> Part:
        """The assembly board: a floor, then a pocket for the first part's footprint."""
        slabs = self.sockets_on_top(outline, [pocket], _BOARD_FLOOR, _BOARD_HEIGHT)
        return self.part(
            "board",
            "assembly_board",
            slabs,
            "jeans_blue",
            {"slot": Frame((0.0, 0.0, _BOARD_FLOOR))},
            keepout=Slab(pocket, _BOARD_FLOOR, _BOARD_HEIGHT),
        )


def _section(family: str):
    return get_shape(family).section(SECTION_SCALE[family])


def make_tower_assembly(
    clearance: float = mm(0.5), chamfer: float = mm(1.0), layer_height: float = mm(0.25), prefix: str = "tower"
) -> Assembly:
    """Build the tower assembly (see module docstring) with `clearance` [m] per side in every joint."""
    b = _Builder(prefix, clearance, chamfer, layer_height)
    base_fp, base_h = _rect(mm(90.0), mm(60.0)), mm(40.0)
    hexagon, post_h = _section("hexagon"), mm(70.0)
    cap_fp, cap_h, cap_socket = _rect(mm(60.0), mm(40.0)), mm(30.0), mm(10.0)
    disc, pin_h, pin_floor = _section("round"), mm(60.0), mm(15.0)

    # Cap: the post's socket open below, solid between, the pin's socket open on top.
    cap_slabs = (
        b.sockets_below(cap_fp, [hexagon], cap_socket)
        + [Slab(cap_fp, cap_socket, pin_floor)]
        + b.sockets_on_top(cap_fp, [disc], pin_floor, cap_h)[1:]
    )
    parts = (
        b.part(
            "base",
            "assembly_part",
            b.sockets_on_top(base_fp, [hexagon], _SOCKET_FLOOR, base_h),
            "yellow",
            {"socket_post": Frame((0.0, 0.0, _SOCKET_FLOOR))},
            keepout=Slab(hexagon, _SOCKET_FLOOR, base_h),
        ),
        b.part("post", "assembly_part", b.prism(hexagon, post_h), "red", {"tip": Frame((0.0, 0.0, post_h))}),
        b.part(
            "cap",
            "assembly_part",
            cap_slabs,
            "purple",
            {"socket_pin": Frame((0.0, 0.0, pin_floor))},
            keepout=Slab(hexagon, 0.0, cap_socket),
        ),
        b.part("pin", "assembly_part", b.prism(disc, pin_h), "green", {"tip": Frame((0.0, 0.0, pin_h))}),
    )
    z_base = _BOARD_FLOOR
    z_post = z_base + _SOCKET_FLOOR
    z_cap = z_post + post_h - cap_socket
    z_pin = z_cap + pin_floor
    names = [p.name for p in parts]
    requires = {names[0]: (), names[1]: (names[0],), names[2]: (names[1],), names[3]: (names[2],)}
    targets = {n: Frame((0.0, 0.0, z)) for n, z in zip(names, (z_base, z_post, z_cap, z_pin))}
    return Assembly(prefix, b.board(_rect(mm(150.0), mm(150.0)), base_fp), parts, requires, targets)


COMB_PEGS = ("oval", "rectangle", "arch")
"""The comb's peg families, left to right along the rail (x)."""
_COMB_PITCH = mm(45.0)


def make_comb_assembly(
    clearance: float = mm(0.5), chamfer: float = mm(1.0), layer_height: float = mm(0.25), prefix: str = "comb"
) -> Assembly:
    """Build the comb assembly (see module docstring) with `clearance` [m] per side in every joint."""
    b = _Builder(prefix, clearance, chamfer, layer_height)
    rail_fp, rail_h = _rect(mm(150.0), mm(50.0)), mm(40.0)
    peg_h = mm(70.0)
    lock_fp, lock_h, lock_socket = _rect(mm(150.0), mm(40.0)), mm(20.0), mm(10.0)
    xs = [(i - 1) * _COMB_PITCH for i in range(len(COMB_PEGS))]
    sections = [_section(f) for f in COMB_PEGS]
    sockets = [profile.translate(s, x, 0.0) for s, x in zip(sections, xs)]
    footprint = profile.normalise(shapely.union_all(sockets))
    rail = b.part(
        "rail",
        "assembly_part",
        b.sockets_on_top(rail_fp, sockets, _SOCKET_FLOOR, rail_h),
        "yellow",
        {f"socket_{f}": Frame((x, 0.0, _SOCKET_FLOOR)) for f, x in zip(COMB_PEGS, xs)},
        keepout=Slab(footprint, _SOCKET_FLOOR, rail_h),
    )
    colours = ("red", "green", "dark_blue")
    pegs = tuple(
        b.part(f"peg_{f}", "assembly_part", b.prism(s, peg_h), col, {"tip": Frame((0.0, 0.0, peg_h))})
        for f, s, col in zip(COMB_PEGS, sections, colours)
    )
    lock = b.part(
        "lock",
        "assembly_part",
        b.sockets_below(lock_fp, sockets, lock_socket) + [Slab(lock_fp, lock_socket, lock_h)],
        "purple",
        keepout=Slab(footprint, 0.0, lock_socket),
    )
    parts = (rail, *pegs, lock)
    z_rail = _BOARD_FLOOR
    z_peg = z_rail + _SOCKET_FLOOR
    z_lock = z_peg + peg_h - lock_socket
    peg_names = tuple(p.name for p in pegs)
    requires = {rail.name: (), **{n: (rail.name,) for n in peg_names}, lock.name: peg_names}
    targets = {rail.name: Frame((0.0, 0.0, z_rail)), lock.name: Frame((0.0, 0.0, z_lock))}
    targets.update({n: Frame((x, 0.0, z_peg)) for n, x in zip(peg_names, xs)})
    return Assembly(prefix, b.board(_rect(mm(170.0), mm(90.0)), rail_fp), parts, requires, targets)


ASSEMBLY_BOARDS = {"bridge": make_bridge_assembly, "tower": make_tower_assembly, "comb": make_comb_assembly}
"""Assembly name -> builder (clearance [m] as first argument)."""
