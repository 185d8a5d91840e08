"""`fmb data import-fmb`: FMB's released `.npy` files (`sim.datasets.fmb_release`: format and
conversion) into one episode store per primitive, OUT/<primitive>/, resumable."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError
from sim.datasets.fmb_release import (
    FPS,
    GRIPPER_OPEN,
    PRIMITIVES,
    FmbImportConfig,
    array_of,
    convert,
    load_fmb_file,
    object_labels,
    segments,
)
from sim.exceptions import DataFormatError
from sim.store import EpisodeStore


def find_files(src: str | Path) -> list[Path]:
    """FMB `.npy` files under `src` (a folder, searched recursively, or one file), sorted."""
    src = Path(src)
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise ParameterError(f"{src}: no such file or folder", "src", str(src))
    files = sorted(p for p in src.rglob("*.npy") if p.is_file())
    if not files:
        raise ParameterError(f"{src}: holds no .npy files (FMB's release format)", "src", str(src))
    return files


def import_fmb(src: str | Path, out: str | Path, config: FmbImportConfig = FmbImportConfig(), progress=True) -> dict:
    """Import every FMB file under `src` into stores OUT/<primitive>/ (resumable: segments already
    imported are skipped; each episode is committed atomically, so an error or Ctrl-C keeps all
    episodes before it).

    Returns:
        {"stores": {primitive: {"store", "episodes", "new"}}, "files", "files_skipped_done",
        "bad_files": [message], "segments_left_out": {primitive: n}, "skipped_keys": {key: files}}.

    Raises:
        DataFormatError: a malformed file (unless `config.skip_bad`), naming the file and the key.
    """
    from tqdm import tqdm

    src, out = Path(src).absolute(), Path(out).absolute()
    files = find_files(src)
    root = src if src.is_dir() else src.parent
    stores: dict[str, EpisodeStore] = {}
    done: dict[str, set[int]] = {}
    expected: dict[str, int] = {}  # file -> segments a run with this selection imports from it
    selection = f"{','.join(config.primitives)};min_steps={config.min_steps}"
    for p in PRIMITIVES:
        if (out / p / "store.json").is_file():
            stores[p] = EpisodeStore.open(out / p)
            for i in stores[p].episode_indices():
                meta = stores[p].load_meta(i)
                done.setdefault(meta["fmb_file"], set()).add(int(meta["fmb_segment"]))
                if meta.get("fmb_selection") == selection:
                    expected[meta["fmb_file"]] = int(meta["fmb_file_segments"])
    new = dict.fromkeys(config.primitives, 0)
    left_out: dict[str, int] = {}
    skipped_keys: dict[str, int] = {}
    bad, skipped_done = [], 0
    for path in tqdm(files, desc="import fmb", unit="file", disable=not progress):
        rel = path.relative_to(root).as_posix()
        if rel in expected and len(done.get(rel, ())) >= expected[rel]:
            skipped_done += 1
            continue
        try:
            raw = load_fmb_file(path)
            data, skipped = convert(raw, path, config)
            steps = len(data["action"])
            prims = raw.get("primitive")
            if prims is None:
                raise DataFormatError(f"{path}: missing key 'primitive'")
            prims = np.asarray(prims).reshape(-1)
            if len(prims) != steps:
                raise DataFormatError(f"{path}: 'primitive' has {len(prims)} steps, the actions {steps}")
            object_ids = array_of(raw, "object_id", path, steps, ()) if "object_id" in raw else None
            segs = segments(prims, object_ids)
            labels = {s.object_id: object_labels(raw, path, s.object_id) for s in segs}
        except DataFormatError as e:
            if not config.skip_bad:
                raise
            bad.append(str(e))
            continue
        for k in skipped:
            skipped_keys[k] = skipped_keys.get(k, 0) + 1
        chosen = [(i, s) for i, s in enumerate(segs) if s.primitive in config.primitives]
        chosen = [(i, s) for i, s in chosen if s.stop - s.start >= config.min_steps]
        for s in segs:
            if s.primitive not in config.primitives or s.stop - s.start < config.min_steps:
                left_out[s.primitive] = left_out.get(s.primitive, 0) + 1
        for i, s in chosen:
            if i in done.get(rel, ()):
                continue
            if s.primitive not in stores:
                stores[s.primitive] = EpisodeStore.create(out / s.primitive, _store_meta(s.primitive, src, config))
            meta = {
                "seed": zlib.crc32(f"{rel}#{i}".encode()) & 0x7FFFFFFF,
                "task": s.primitive,
                "success": None,
                "source": "fmb release",
                "fmb_file": rel,
                "fmb_segment": i,
                "fmb_file_segments": len(chosen),
                "fmb_selection": selection,
                "fmb_steps": [s.start, s.stop],
                **labels[s.object_id],
            }
            stores[s.primitive].append({k: v[s.start : s.stop] for k, v in data.items()}, meta)
            new[s.primitive] = new.get(s.primitive, 0) + 1
    return {
        "stores": {
            p: {"store": str(st.root), "episodes": len(st), "new": new.get(p, 0)} for p, st in sorted(stores.items())
        },
        "files": len(files),
        "files_skipped_done": skipped_done,
        "bad_files": bad,
        "segments_left_out": left_out,
        "skipped_keys": skipped_keys,
    }


def _store_meta(primitive: str, src: Path, config: FmbImportConfig) -> dict:
    return {
        "task": primitive,
        "backend": "real",
        "fps": FPS,
        "source": "fmb release",
        "robot_type": "franka",
        "fmb_source": os.fspath(src),
        "cameras": list(config.cameras),
        "depth": config.depth,
        "conversion": {
            "tcp_pose": "unchanged (base frame, xyzw), quaternion normalised",
            "wrench": "tcp_force + tcp_torque, end-effector frame taken as the TCP frame",
            "gripper": f"gripper_dist, else {GRIPPER_OPEN} m * (1 - gripper_pose)",
            "rgb": "BGR -> RGB",
            "depth": f"raw * {config.depth_scale} m",
            "action": "translation * 0.06 m, rotvec(euler xyz * 0.25 rad), gripper"
            if config.action_units == "normalized"
            else "translation [m], rotvec(euler xyz [rad]), gripper",
        },
    }
