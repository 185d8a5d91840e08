"""Rebuild parts from a manifest: the manifest alone is enough to regenerate every part."""

from __future__ import annotations

from cad.assemblies import make_assembly
from cad.board import BoardSpec, Hole, make_board
from cad.fixture import FixtureSpec, make_fixture
from cad.part import Part
from cad.peg import PegSpec, make_peg
from cad.shape_family import SHAPES, ShapeFamily, canonical_shape_name
from fmb_core.errors import ParameterError


def shape_from_params(params: dict) -> ShapeFamily:
    """ShapeFamily from its `params()` dict."""
    fields = dict(params)
    cls = SHAPES[canonical_shape_name(fields.pop("family"))]
    return cls(**fields)


def part_from_entry(entry: dict) -> Part:
    """Rebuild the part described by one manifest entry."""
    p = entry["params_si"]
    kind = p.get("kind")
    if kind == "peg":
        size = p["size"]
        spec = PegSpec(
            shape_from_params(p["shape"]),
            size=size,
            length=entry["peg"]["length"],
            scale=p["section_scale"] if size == "custom" else 1.0,
            tip_chamfer=p["tip_chamfer"],
            layer_height=p["layer_height"],
            collision_chamfer_steps=p["collision_chamfer_steps"],
            name=entry["name"],
            colour=entry["colour"],
        )
        return make_peg(spec)
    if kind == "board":
        holes = tuple(
            Hole(h["key"], shape_from_params(h["shape"]), h["scale"], h["x"], h["y"], h["yaw"]) for h in p["holes"]
        )
        return make_board(
            BoardSpec(
                holes,
                name=entry["name"],
                clearance=p["clearance"],
                outline=tuple(p["outline"]),
                entry_chamfer=p["entry_chamfer"],
                layer_height=p["layer_height"],
                collision_chamfer_steps=p["collision_chamfer_steps"],
                colour=entry["colour"],
            )
        )
    if kind == "fixture":
        return make_fixture(
            FixtureSpec(
                outline=tuple(p["outline"]),
                pocket=p["pocket"],
                pocket_depth=p["pocket_depth"],
                entry_chamfer=p["entry_chamfer"],
                corner_radius=p["corner_radius"],
                collision_chamfer_steps=p["collision_chamfer_steps"],
                name=entry["name"],
                colour=entry["colour"],
            )
        )
    if kind in ("assembly_board", "assembly_part"):
        assembly = make_assembly(p["assembly"], clearance=p["clearance"])
        for part in (assembly.board, *assembly.parts):
            if part.name == entry["name"]:
                return part
    raise ParameterError(f"manifest entry {entry.get('name')!r}: cannot rebuild a part of kind {kind!r}")


def parts_from_manifest(manifest: dict) -> list[Part]:
    """Every part of a manifest, in manifest order."""
    return [part_from_entry(e) for e in manifest["parts"]]
