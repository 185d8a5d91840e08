"""`fmb cad ...`: generate, sample and preview printable objects.

Lengths on the command line are in millimetres (the unit of the files written); they are
converted to metres here and nowhere else.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cad.units import mm


def register(sub) -> None:
    """Add the `cad` command group to the `fmb` subparsers."""
    cad = sub.add_parser("cad", help="generate printable FMB objects (STL/3MF/STEP) and sim assets")
    cad_sub = cad.add_subparsers(dest="cad_command", metavar="CAD_COMMAND", required=True)

    p = cad_sub.add_parser("set", help="the standard FMB set: 54 pegs, 3 boards, fixture, 3 assemblies")
    _common_output(p)
    p.add_argument("--seed", type=int, default=0, help="seed recorded in the manifest (the FMB set is fixed) [int]")
    p.add_argument("--preview", action="store_true", help="also render OUT/preview.png")
    p.set_defaults(handler=_cmd_set)

    p = cad_sub.add_parser("part", help="one peg and a one-hole board that fits it")
    p.add_argument("--shape", required=True, help="shape family, e.g. star, 3-prong, square-circle")
    p.add_argument("--size", default="M", help="peg size: S, M or L (default M)")
    p.add_argument("--length", default="long", help="peg length: short (100 mm) or long (150 mm) (default long)")
    _common_output(p)
    p.set_defaults(handler=_cmd_part)

    p = cad_sub.add_parser("sample", help="procedural new members of shape families, with boards that fit them")
    p.add_argument("--family", default="all", help="shape family or 'all' (default all)")
    p.add_argument("--count", type=int, default=9, help="members per family, 1-1000 (default 9)")
    p.add_argument("--seed", type=int, default=0, help="random seed, 0 to 2^32-1; same seed, same bytes (default 0)")
    _common_output(p)
    p.set_defaults(handler=_cmd_sample)

    p = cad_sub.add_parser("preview", help="render a labelled contact sheet PNG of an object set folder")
    p.add_argument("folder", type=Path, help="folder written by `fmb cad set|part|sample`")
    p.add_argument("--out", type=Path, default=None, help="PNG path (default FOLDER/preview.png)")
    p.set_defaults(handler=_cmd_preview)


def _common_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output folder (written atomically)")
    p.add_argument(
        "--clearance", type=float, default=0.5, help="hole clearance per side [mm], 0-3 (default 0.5)"
    )
    p.add_argument(
        "--formats", default="stl,3mf", help="comma-separated print formats: stl, 3mf, step (default stl,3mf)"
    )
    p.add_argument("--infill", type=float, default=0.2, help="infill fraction for the mass estimate, 0-1 (default 0.2)")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT that holds no manifest.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--bed", default=None, help="printer bed WIDTHxDEPTH [mm], e.g. 220x220: parts larger are also written as tiles"
    )
    p.add_argument(
        "--tile-clearance", type=float, default=0.2, help="dovetail gap per side between tiles [mm], 0-1 (default 0.2)"
    )


def _export(objects, args) -> dict:
    from cad.export import export_set, parse_formats
    from cad.mass import PrintSettings

    formats = parse_formats(args.formats)
    bed, tile_clearance = _bed(args)
    manifest = export_set(
        objects,
        args.out,
        formats,
        PrintSettings(infill=args.infill),
        force=args.force,
        progress=not args.quiet,
        bed=bed,
        tile_clearance=tile_clearance,
    )
    tiles = sum(len(p.get("tiles", ())) for p in manifest["parts"])
    tiled = f", {tiles} tiles for a {args.bed} mm bed (assembly sheet tiles.png)" if tiles else ""
    print(f"wrote {len(manifest['parts'])} parts{tiled} to {Path(args.out).absolute()}")
    return manifest


def _bed(args) -> tuple:
    """(bed [m] or None, tile clearance [m]) from --bed and --tile-clearance."""
    from cad.tiling import TILE_CLEARANCE_RANGE, parse_bed
    from fmb_core.errors import check_length_mm

    clearance = check_length_mm("--tile-clearance", mm(args.tile_clearance), *TILE_CLEARANCE_RANGE)
    return (None if args.bed is None else parse_bed(args.bed)), clearance


def _check_clearance(value_mm: float) -> float:
    from cad.board import CLEARANCE_RANGE
    from fmb_core.errors import check_length_mm

    return check_length_mm("--clearance", mm(value_mm), *CLEARANCE_RANGE)


def _cmd_set(args) -> int:
    from cad.object_set import standard_set

    objects = standard_set(clearance=_check_clearance(args.clearance))
    objects = type(objects)(objects.parts, objects.assemblies, args.seed, objects.clearance, objects.pegs)
    _export(objects, args)
    if args.preview:
        _cmd_preview(argparse.Namespace(folder=args.out, out=None))
    return 0


def _cmd_part(args) -> int:
    from cad.object_set import single_part
    from cad.shape_family import canonical_shape_name

    objects = single_part(
        canonical_shape_name(args.shape), args.size.upper(), args.length.lower(), _check_clearance(args.clearance)
    )
    _export(objects, args)
    return 0


def _cmd_sample(args) -> int:
    from cad.object_set import sample_set

    objects = sample_set(args.family, args.count, args.seed, _check_clearance(args.clearance))
    _export(objects, args)
    return 0


def _cmd_preview(args) -> int:
    from cad.export import load_manifest
    from cad.preview import render_contact_sheet
    from cad.rebuild import parts_from_manifest

    folder = Path(args.folder)
    manifest = load_manifest(folder)
    parts = parts_from_manifest(manifest)
    out = Path(args.out) if args.out else folder / "preview.png"
    render_contact_sheet(parts, out, title=f"{folder.name}: {len(parts)} parts")
    print(f"wrote {out.absolute()}")
    return 0
