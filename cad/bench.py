"""Benchmarks for `cad`: the standard set end to end, and one part end to end."""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

TILED_BED_MM = (180.0, 180.0)
"""Bed of the tiled-set timing [mm]: the smallest the tiling is meant for (issue 21's target)."""


def bench_cad(repeats: int = 3) -> dict:
    """Time generating and writing the standard set (STL + 3MF + collision pieces + sim assets),
    the same set with tiles for a 180 x 180 mm bed (every tile checked and written, assembly
    sheet), and a single part (size-M star peg with its board), `repeats` times each.

    Returns:
        JSON-ready dict: medians and all runs [s] (wall clock; the two sets also in process CPU
        time, which other jobs on the cores do not inflate), part / piece / triangle / tile counts.
    """
    from cad.export import export_set
    from cad.object_set import single_part, standard_set
    from cad.units import mm

    set_times, tiled_times, part_times = [], [], []
    set_cpu, tiled_cpu = [], []  # process CPU time [s]: comparable when other jobs share the cores
    manifest = part_manifest = tiled_manifest = None
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            manifest = export_set(standard_set(), Path(tmp) / f"set{i}", progress=False)
            set_times.append(time.perf_counter() - t)
            set_cpu.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            bed = (mm(TILED_BED_MM[0]), mm(TILED_BED_MM[1]))
            tiled_manifest = export_set(standard_set(), Path(tmp) / f"tiled{i}", progress=False, bed=bed)
            tiled_times.append(time.perf_counter() - t)
            tiled_cpu.append(time.process_time() - c)
            t = time.perf_counter()
            part_manifest = export_set(single_part("star", "M", "long"), Path(tmp) / f"part{i}", progress=False)
            part_times.append(time.perf_counter() - t)
    parts = manifest["parts"]
    return {
        "set_seconds_median": statistics.median(set_times),
        "set_seconds": set_times,
        "set_cpu_seconds_median": statistics.median(set_cpu),
        "tiled_set_seconds_median": statistics.median(tiled_times),
        "tiled_set_seconds": tiled_times,
        "tiled_set_cpu_seconds_median": statistics.median(tiled_cpu),
        "tiled_bed_mm": list(TILED_BED_MM),
        "tiled_parts": sum("tiles" in p for p in tiled_manifest["parts"]),
        "tiles": sum(len(p.get("tiles", ())) for p in tiled_manifest["parts"]),
        "part_seconds_median": statistics.median(part_times),
        "part_seconds": part_times,
        "single_part_files": len(part_manifest["parts"]),
        "parts": len(parts),
        "pegs": sum(p["kind"] == "peg" for p in parts),
        "boards": sum(p["kind"] == "board" for p in parts),
        "collision_pieces": sum(p["collision_pieces"] for p in parts),
        "triangles": sum(p["triangles"] for p in parts),
        "repeats": repeats,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
