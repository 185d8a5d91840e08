"""Every assembly by name: FMB's boards (`cad.assembly_boards`: bridge, tower, comb) and the
procedural members (`cad.assembly_procedural`: procedural_<seed>)."""

from __future__ import annotations

from cad.assembly import Assembly
from cad.assembly_boards import ASSEMBLY_BOARDS
from cad.assembly_procedural import is_procedural, procedural_from_name
from cad.units import mm
from fmb_core.errors import ParameterError


def make_assembly(name: str, clearance: float = mm(0.5)) -> Assembly:
    """The assembly called `name` at `clearance` [m] per side: one of ASSEMBLY_BOARDS, or a
    procedural member `procedural_<seed>`."""
    if is_procedural(name):
        return procedural_from_name(name, clearance)
    if name not in ASSEMBLY_BOARDS:
        known = ", ".join([*ASSEMBLY_BOARDS, "procedural_<seed>"])
        raise ParameterError(f"unknown assembly board {name!r}; known: {known}", "assembly board", name)
    return ASSEMBLY_BOARDS[name](clearance=clearance)
