"""Write an object set to disk: print files in millimetres, simulator assets, and a manifest.

Layout of an output folder:

    manifest.json          every part: parameters, volume, bounding box, mass, frames, files
    stl/<part>.stl         binary STL [mm]
    3mf/<part>.3mf         3MF [mm] (deterministic zip: fixed timestamps)
    step/<part>.step       STEP [mm], with the optional [step] extra
    sim/<part>.xml         MJCF body with exact convex collision pieces [m]
    sim/<part>.urdf        URDF for PyBullet, collision pieces in sim/<part>_collision.obj [m]
    stl/tiles/<tile>.stl   with a bed: tiles of the parts that do not fit it (also 3mf/tiles/, step/tiles/)
    tiles.png              with tiles: the one-page assembly sheet

The folder is built under a temporary name and renamed into place (see `fmb_core.atomic`).
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import trimesh

from cad.fmb_reference import COLOURS
from cad.mass import PrintSettings, estimate_mass
from cad.object_set import ObjectSet
from cad.part import Part
from cad.printability import PrintLimits, check_part
from cad.splits import SPLITS
from cad.tiling import DEFAULT_TILE_CLEARANCE
from cad.units import to_mm
from fmb_core.atomic import atomic_dir, check_output_dir
from fmb_core.errors import ParameterError

FORMATS = ("stl", "3mf", "step")
"""Print formats `export_set` can write."""

SCHEMA = "fmb-object-set/1"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_UUID = re.compile(rb'UUID="[0-9a-fA-F-]{36}"')


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    """"stl,3mf" -> ("stl", "3mf"); ParameterError naming an unknown format."""
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not items:
        raise ParameterError(f"--formats is empty; choose from {', '.join(FORMATS)}")
    for item in items:
        if item not in FORMATS:
            raise ParameterError(f"unknown format {item!r} in --formats; known: {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(items))


def mesh_mm(part: Part) -> trimesh.Trimesh:
    """The part's print mesh in millimetres."""
    mesh = part.mesh()
    mesh.apply_scale(to_mm(1.0))
    return mesh


def write_stl(mesh: trimesh.Trimesh, path: Path) -> None:
    """Binary STL of `mesh` (already in mm)."""
    path.write_bytes(trimesh.exchange.stl.export_stl(mesh))


def write_3mf(mesh: trimesh.Trimesh, path: Path, name: str = "part") -> None:
    """3MF of `mesh` (already in mm), byte-identical for identical meshes.

    trimesh writes random UUIDs and the current time; we replace the UUIDs with ones derived
    from `name` (uuid5) and fix the zip timestamps.
    """
    raw = trimesh.exchange.threemf.export_3MF(mesh)
    counter = iter(range(1 << 30))

    def stable_uuid(_match: re.Match) -> bytes:
        return b'UUID="%s"' % str(uuid.uuid5(uuid.NAMESPACE_URL, f"fmb/{name}/{next(counter)}")).encode()

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            data = _UUID.sub(stable_uuid, src.read(info.filename))
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, data)
    path.write_bytes(out.getvalue())


def write_print_files(part: Part, mesh: trimesh.Trimesh, root: Path, formats: tuple[str, ...], sub: str = "") -> dict:
    """Write `part`'s print files (`mesh` in mm) as `<fmt>/<sub>/<name>.<fmt>`; return format -> path."""
    files: dict[str, str] = {}
    for fmt in formats:
        rel = "/".join(p for p in (fmt, sub, f"{part.name}.{fmt}") if p)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if fmt == "stl":
            write_stl(mesh, root / rel)
        elif fmt == "3mf":
            write_3mf(mesh, root / rel, part.name)
        elif fmt == "step":
            from cad.step_export import write_step

            write_step(part, root / rel)
        files[fmt] = rel
    return files


def write_tiles(tiles: list, layout, root: Path, formats: tuple[str, ...], limits: PrintLimits) -> list[dict]:
    """Check and write the tiles of one part under `<fmt>/tiles/`; return their manifest entries."""
    entries = []
    for tile in tiles:
        check_part(tile.part, limits)
        mesh = mesh_mm(tile.part)
        bounds = np.asarray(mesh.bounds)
        joints = [
            {"seam_mm": f"{j.axis}={to_mm(j.at):.4g}", "along_mm": round(to_mm(j.along), 4), "joint": _joint(tile, j)}
            for j in layout.joints
            if tile.cell in (j.male, j.female)
        ]
        entries.append(
            {
                "name": tile.name,
                "cell": list(tile.cell),
                "volume_mm3": round(float(mesh.volume), 3),
                "bbox_mm": [[round(float(v), 4) for v in row] for row in bounds],
                "size_mm": [round(float(v), 4) for v in bounds[1] - bounds[0]],
                "triangles": int(len(mesh.faces)),
                "dovetails": joints,
                "files": write_print_files(tile.part, mesh, root, formats, "tiles"),
            }
        )
    return entries


def _joint(tile, joint) -> str:
    other = joint.female if tile.cell == joint.male else joint.male
    role = "tab into" if tile.cell == joint.male else "notch for"
    return f"{role} {tile.of}_tile_c{other[0]}r{other[1]}"


def write_part(
    part: Part, root: Path, formats: tuple[str, ...], settings: PrintSettings, limits: PrintLimits
) -> dict:
    """Check and write one part under `root`; return its manifest entry."""
    from cad.sim_assets import write_sim_assets

    check_part(part, limits)
    mesh = mesh_mm(part)
    files = write_print_files(part, mesh, root, formats)
    mass = estimate_mass(part, settings)
    sim_dir = root / "sim"
    sim_dir.mkdir(exist_ok=True)
    visual = f"../{files['stl']}" if "stl" in files else None
    if visual is None:  # the simulators need a visual mesh: keep an STL beside the assets
        write_stl(mesh, sim_dir / f"{part.name}_visual.stl")
        visual = f"{part.name}_visual.stl"
    for key, name in write_sim_assets(part, sim_dir, visual, mass).items():
        files[key] = f"sim/{name}"
    bounds = np.asarray(mesh.bounds)
    return {
        "name": part.name,
        "kind": part.kind,
        "colour": part.colour,
        "colour_rgb": list(COLOURS[part.colour]),
        "params_si": part.params,
        "volume_mm3": round(float(mesh.volume), 3),
        "bbox_mm": [[round(float(v), 4) for v in row] for row in bounds],
        "size_mm": [round(float(v), 4) for v in bounds[1] - bounds[0]],
        "mass_g": round(mass * 1e3, 3),
        "collision_pieces": len(part.collision_pieces()),
        "triangles": int(len(mesh.faces)),
        "frames": {
            k: {"position_m": list(f.position), "quaternion_xyzw": list(f.quaternion)} for k, f in part.frames.items()
        },
        "files": files,
    }


def export_set(
    objects: ObjectSet,
    out: Path,
    formats: tuple[str, ...] = ("stl", "3mf"),
    settings: PrintSettings = PrintSettings(),
    limits: PrintLimits = PrintLimits(),
    force: bool = False,
    progress: bool = True,
    bed: tuple[float, float] | None = None,
    tile_clearance: float = DEFAULT_TILE_CLEARANCE,
) -> dict:
    """Check every part and write the set to `out` atomically; return the manifest.

    With `bed` (width, depth) [m], every part that does not fit it is also written as tiles
    (`cad.tiling`, dovetails with `tile_clearance` [m] per side), each tile checked as a part, and
    the assembly sheet `tiles.png`; the part's entry lists its tiles. The whole part's files stay
    (the simulators use them).

    Raises PrintabilityError or TilingError (nothing written) if any part or tile fails a check
    or no tile layout fits the bed.
    """
    from tqdm import tqdm

    from cad.tiling import make_tiles, plan_tiles

    out = check_output_dir(Path(out), force=force)
    formats = parse_formats(formats)
    if "step" in formats:
        from cad.step_export import require_build123d

        require_build123d()
    layouts = {}
    if bed is not None:  # plan first: a part that cannot be tiled fails before anything is built
        for part in objects.parts:
            layout = plan_tiles(part, bed, tile_clearance, limits)
            if layout is not None:
                layouts[part.name] = layout
    with atomic_dir(out) as tmp:
        entries, sheet = [], []
        for part in tqdm(objects.parts, desc=f"writing {out.name}", unit="part", disable=not progress):
            entry = write_part(part, tmp, formats, settings, limits)
            spec = objects.pegs.get(part.name)
            if spec is not None:
                entry["peg"] = {"family": spec.shape.name, "size": spec.size, "length": spec.length}
                entry["splits"] = {name: split.side(spec) for name, split in SPLITS.items()}
            layout = layouts.get(part.name)
            if layout is not None:
                tiles = make_tiles(part, layout)
                entry["tiles"] = write_tiles(tiles, layout, tmp, formats, limits)
                sheet.append((part, layout, tiles))
            entries.append(entry)
        if sheet:
            from cad.tile_sheet import render_tile_sheet

            render_tile_sheet(sheet, tmp / "tiles.png", bed)
        manifest = {
            "schema": SCHEMA,
            "units": {"files": "mm", "params_si": "m, rad", "mass": "g", "frames": "m, quaternion xyzw"},
            "seed": objects.seed,
            "clearance_mm": round(to_mm(objects.clearance), 6),
            "formats": list(formats),
            "print_settings": {
                "infill": settings.infill,
                "density_kg_m3": settings.density,
                "wall_mm": round(to_mm(settings.wall), 6),
                "skin_mm": round(to_mm(settings.skin), 6),
            },
            "print_limits": {
                "min_wall_mm": round(to_mm(limits.min_wall), 6),
                "min_feature_mm": round(to_mm(limits.min_feature), 6),
            },
            "splits": {name: s.description for name, s in SPLITS.items()},
            "bed_mm": None if bed is None else [round(to_mm(v), 6) for v in bed],
            "tile_clearance_mm": None if bed is None else round(to_mm(tile_clearance), 6),
            "assembly_sheet": "tiles.png" if sheet else None,
            "parts": entries,
            "assemblies": [
                {
                    "name": a.name,
                    "board": a.board.name,
                    "order": a.order,
                    "requires": {k: list(v) for k, v in a.requires.items()},
                    "targets": {
                        k: {"position_m": list(f.position), "quaternion_xyzw": list(f.quaternion)}
                        for k, f in a.targets.items()
                    },
                }
                for a in objects.assemblies
            ],
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def load_manifest(folder: Path) -> dict:
    """Read `folder/manifest.json`, with a clear error when it is missing or not ours."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise ParameterError(f"{folder}: no manifest.json (is it an object set written by `fmb cad set`?)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ParameterError(f"{path}: not valid JSON ({e})") from None
    if manifest.get("schema") != SCHEMA:
        raise ParameterError(f"{path}: schema {manifest.get('schema')!r}, expected {SCHEMA!r}")
    return manifest
