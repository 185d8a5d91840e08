"""`fmb quickstart`: the README's main job.

For now: generate the full FMB object set (print files, simulator assets, manifest) and its
contact-sheet preview under `runs/quickstart/`. Later stages (demonstrations, training,
evaluation) will extend it.
"""

from __future__ import annotations

import time
from pathlib import Path


def register(sub) -> None:
    """Add `fmb quickstart` to the `fmb` subparsers."""
    p = sub.add_parser("quickstart", help="generate the FMB object set and its preview (the README's main job)")
    p.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder (default runs/quickstart)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def run(args) -> int:
    from cad.export import export_set
    from cad.object_set import standard_set
    from cad.preview import render_contact_sheet

    t0 = time.perf_counter()
    objects_dir = Path(args.out).absolute() / "objects"
    print("[1/2] generating the FMB object set (54 pegs, 3 boards, fixture, bridge assembly)")
    objects = standard_set()
    manifest = export_set(objects, objects_dir, progress=not args.quiet, force=False)
    print("[2/2] rendering the preview")
    preview = render_contact_sheet(list(objects.parts), objects_dir / "preview.png", title="FMB object set")
    print(f"quickstart done in {time.perf_counter() - t0:.1f} s")
    print(f"  object set: {objects_dir} ({len(manifest['parts'])} parts, manifest.json)")
    print(f"  preview:    {preview}")
    return 0
