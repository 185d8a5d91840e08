"""`fmb bench import`: how fast FMB's released format imports (`fmb data import-fmb`).

Writes `files` synthetic trajectories in FMB's format (`fmb_release.synthetic_trajectory`:
camera-like 256 px frames from the four cameras, depth, the state keys; a vertical peg's
grasp -> rotate -> insert), `steps` steps in all, into a temporary folder, imports them with the
default settings (the four cameras, no depth) or `--depth`, and reports the wall time of the
import alone (the files are written before the clock starts), its CPU time (user + system, of this
process: on a shared machine the wall time also counts the wait for a core, the CPU time much
less), steps per second and the store's size. Synthetic frames are noisier than none and
smoother than a real camera's: their compression, which dominates the import, is of the same
order as real frames'.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fmb_core.errors import check_range

PRIMITIVE_SHARES = (("grasp", 0.4), ("rotate", 0.2), ("insert", 0.4))


def add_flags(p) -> None:
    p.add_argument("--steps", type=int, default=1000, help="steps in all (default 1000)")
    p.add_argument("--files", type=int, default=10, help="trajectory files they are split into (default 10)")
    p.add_argument("--image-size", type=int, default=256, help="camera frames, square [px] (default 256: FMB's)")
    p.add_argument("--depth", action="store_true", help="also import the depth images")
    p.add_argument("--repeats", type=int, default=1, help="imports timed; the median is reported (default 1)")
    p.add_argument("--json", action="store_true", help="JSON only on stdout")


def run(args) -> int:
    result = bench_import(args.steps, args.files, args.image_size, args.depth, args.repeats)
    print(json.dumps(result, indent=1))
    if not args.json:
        print(
            f"imported {result['steps']} steps in {result['seconds']['median']:.1f} s "
            f"({result['cpu_seconds']['median']:.1f} s CPU; median of {args.repeats}): "
            f"{result['steps_per_second']:.0f} steps/s, store {result['store_mb']:.0f} MB",
            file=sys.stderr,
        )
    return 0


def bench_import(steps: int = 1000, files: int = 10, image_size: int = 256, depth: bool = False, repeats: int = 1):
    """The figures of the module docstring, as a JSON-ready dict."""
    from sim.datasets.fmb_import import import_fmb
    from sim.datasets.fmb_release import FmbImportConfig, synthetic_trajectory

    check_range("files", files, 1, 1000)
    check_range("steps", steps, files, 1_000_000)
    check_range("image_size", image_size, 8, 1024, unit="px")
    check_range("repeats", repeats, 1, 100)
    import resource

    seconds, cpu, size = [], [], 0
    with tempfile.TemporaryDirectory(prefix="fmb_bench_import_") as tmp:
        src = Path(tmp) / "release" / "single_object_manipulation"
        src.mkdir(parents=True)
        for k in range(files):
            n = steps // files + (k < steps % files)
            counts = [int(round(share * n)) for _, share in PRIMITIVE_SHARES[:-1]]
            counts.append(n - sum(counts))
            primitives = [name for (name, _), c in zip(PRIMITIVE_SHARES, counts) for _ in range(c)]
            np.save(src / f"3_M_L_2_vertical_n_{k}.npy", synthetic_trajectory(primitives, k, image_size))
        for r in range(repeats):
            out = Path(tmp) / f"stores_{r}"
            t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            import_fmb(src.parent, out, FmbImportConfig(depth=depth), progress=False)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            seconds.append(time.perf_counter() - t0)
            cpu.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    median = float(np.median(seconds))
    return {
        "steps": steps,
        "files": files,
        "image_size": image_size,
        "cameras": 4,
        "depth": depth,
        "seconds": {"median": round(median, 2), "all": [round(s, 2) for s in seconds]},
        "cpu_seconds": {"median": round(float(np.median(cpu)), 2), "all": [round(s, 2) for s in cpu]},
        "steps_per_second": round(steps / median, 1),
        "store_mb": round(size / 1e6, 1),
    }
