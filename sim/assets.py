"""Simulator assets of cad parts, generated on demand and cached on disk.

`part_assets(part)` returns the MJCF and URDF files of a part, writing them (with the STL visual
mesh) under `$FMB_CACHE` (default `~/.cache/fmb`) in a folder named by the part's name and a hash
of its parameters and of the source of the `cad` package, which generates them (a part's
dimensions are not all in its parameters: a board's layout lives in module constants, so a change
to the code must not find the old geometry in the cache). Writes are atomic, so parallel workers
can share the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

from cad.export import mesh_mm, write_stl
from cad.mass import estimate_mass
from cad.part import Part
from cad.sim_assets import write_sim_assets
from fmb_core.atomic import atomic_dir


class PartAssets(NamedTuple):
    """Files of one part's simulator assets."""

    mjcf: Path
    urdf: Path
    collision_obj: Path


def cache_root() -> Path:
    """Root of the asset cache ($FMB_CACHE or ~/.cache/fmb)."""
    return Path(os.environ.get("FMB_CACHE", Path.home() / ".cache" / "fmb")).expanduser()


def source_fingerprint(package: Path) -> str:
    """A hash of the Python source under `package` (file names and contents)."""
    digest = hashlib.sha256()
    for file in sorted(package.rglob("*.py")):
        digest.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def cad_fingerprint() -> str:
    """`source_fingerprint` of the installed `cad` package (computed once per process)."""
    import cad

    return source_fingerprint(Path(cad.__file__).parent)


def part_key(part: Part, code: str | None = None) -> str:
    """Folder name for a part: its name and a hash of its parameters and of the code that generates
    its assets (`code`, default `cad_fingerprint()`)."""
    blob = json.dumps(part.params, sort_keys=True, default=str).encode()
    blob += (cad_fingerprint() if code is None else code).encode()
    return f"{part.name}-{hashlib.sha256(blob).hexdigest()[:12]}"


def part_assets(part: Part) -> PartAssets:
    """The part's MJCF / URDF / collision OBJ, generated into the cache if missing."""
    folder = cache_root() / "parts" / part_key(part)
    files = PartAssets(folder / f"{part.name}.xml", folder / f"{part.name}.urdf", folder / f"{part.name}_collision.obj")
    if not all(f.is_file() for f in files):
        with atomic_dir(folder) as tmp:
            write_stl(mesh_mm(part), tmp / f"{part.name}.stl")
            write_sim_assets(part, tmp, f"{part.name}.stl", estimate_mass(part))
            (tmp / "manifest.json").write_text(json.dumps({"part": part.name, "params": part.params}, default=str))
    return files
