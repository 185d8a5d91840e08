"""`fmb data info`: what an episode store holds (one view for simulated, recorded and imported data),
and a contact sheet of its episodes' first and last camera frames.

    info = store_info("runs/fmb/insert")      # episodes, steps, lengths, success, skills, objects, keys
    contact_sheet(store, "sheet.png")         # a row per episode: first | last frame of each camera
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError, check_range
from sim import observation as ob
from sim.store import META_KEY, EpisodeStore


def array_headers(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """{key: (shape, dtype)} of the arrays of one episode file, read from the npy headers (no data decoded)."""
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            key = name.removesuffix(".npy")
            if key == META_KEY:
                continue
            with z.open(name) as f:
                version = np.lib.format.read_magic(f)
                fmt = np.lib.format
                shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
            out[key] = (tuple(shape), str(dtype))
    return out


def store_info(path: str | Path) -> dict:
    """Episodes, steps, episode lengths [steps] and [s], success (true/false/unknown), skills, objects,
    sources and the first episode's keys with their per-step shapes and dtypes."""
    store = EpisodeStore.open(path)
    indices = store.episode_indices()
    metas = [store.load_meta(i) for i in indices]
    lengths = np.array([m["num_steps"] for m in metas]) if metas else np.zeros(0, int)
    fps = float(store.meta.get("fps", 10))
    keys = {}
    if indices:
        headers = array_headers(store.root / "episodes" / f"episode_{indices[0]:06d}.npz")
        keys = {k: {"shape": list(shape[1:]), "dtype": dtype} for k, (shape, dtype) in sorted(headers.items())}
    success = Counter({True: "true", False: "false"}.get(m.get("success"), "unknown") for m in metas)
    return {
        "store": str(store.root),
        "task": store.meta.get("task"),
        "source": store.meta.get("source"),
        "fps": fps,
        "episodes": len(indices),
        "steps": int(lengths.sum()),
        "length_steps": {"min": int(lengths.min()), "mean": float(lengths.mean()), "max": int(lengths.max())}
        if len(lengths)
        else {},
        "duration_s": round(float(lengths.sum()) / fps, 3),
        "success": dict(success),
        "skills": dict(Counter(str(m.get("task")) for m in metas)),
        "objects": dict(Counter(str(m.get("peg") or m.get("family") or m.get("object") or "-") for m in metas)),
        "sources": dict(Counter(str(m.get("source") or store.meta.get("source") or "-") for m in metas)),
        "cameras": sorted(k.removeprefix(ob.store_key(ob.RGB_PREFIX)) for k in keys if "/rgb/" in k),
        "keys": keys,
    }


def contact_sheet(store: EpisodeStore, out: str | Path, max_episodes: int = 12, tile: int = 128) -> Path:
    """A PNG with one row per episode (the first `max_episodes`): its first and last frame of each
    camera, `tile` px tall each, titled with episode, skill, object and success. Returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_range("max_episodes", max_episodes, 1, 1000)
    indices = store.episode_indices()[: int(max_episodes)]
    if not indices:
        raise ParameterError(f"episode store {store.root} is empty; no contact sheet")
    cameras = store_info(store.root)["cameras"]
    if not cameras:
        from sim.exceptions import DataFormatError

        raise DataFormatError(f"{store.root}: its episodes hold no camera images (obs/rgb/<camera>)")
    cols = 2 * len(cameras)
    fig = Figure(figsize=(cols * tile / 100, len(indices) * (tile + 24) / 100), dpi=100)
    for r, index in enumerate(indices):
        keys = [ob.store_key(ob.rgb_key(c)) for c in cameras]
        episode = store.load(index, keys)
        meta = episode.meta
        label = (
            f"#{index} {meta.get('task')} {meta.get('peg') or meta.get('family') or ''} success={meta.get('success')}"
        )
        for c, key in enumerate(keys):
            frames = episode.data[key]
            for j, (which, frame) in enumerate((("first", frames[0]), ("last", frames[-1]))):
                ax = fig.add_subplot(len(indices), cols, r * cols + 2 * c + j + 1)
                ax.imshow(frame)
                ax.set_axis_off()
                first = c == 0 and j == 0  # the episode's label, left-aligned over its row
                title = f"{label}\n{cameras[c]} {which}" if first else f"\n{cameras[c]} {which}"
                ax.set_title(title, fontsize=6, loc="left" if first else "center")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(out))
    return out
