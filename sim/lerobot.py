"""LeRobot datasets: export an EpisodeStore (v2.1 here, v3.0 through `sim.lerobot_v3`), import a
dataset (ours or foreign; v2.0, v2.1, v3.0) back. The column mapping is `sim.lerobot_columns`'.

The v2.1 format is written and read directly (pyarrow, PyAV); the `lerobot` package is not needed::

    meta/info.json  meta/episodes.jsonl  meta/tasks.jsonl  meta/episodes_stats.jsonl
    data/chunk-000/episode_000000.parquet               one row per frame
    videos/chunk-000/observation.images.<cam>/episode_000000.mp4

Column mapping (store key <-> LeRobot feature), T frames:
    obs/tcp_pose, obs/tcp_vel, obs/wrench, obs/q, obs/dq, obs/gripper <-> observation.state (T, 34)
        float32, concatenated in that order (`STATE_NAMES`); a store holding only "obs/state"
        exports that instead. Import always gives "obs/state" and, when the names match, the parts.
    obs/rgb/<cam> (T, H, W, 3) uint8 <-> observation.images.<cam>, an mp4 (h264, else mpeg4;
        yuv420p). Odd sizes are padded by one edge row/column to the even sizes yuv420p needs.
    action <-> action; reward <-> next.reward; done <-> next.done; success <-> next.success.
    other (T,) or (T, D) arrays: obs/<a>/<b> <-> observation.<a>.<b>, <name> <-> <name>.
Depth images ("obs/depth/*") and point clouds ("obs/points") are not exported: LeRobot has no
lossless depth video, and both are large. Episode metadata travels in episodes.jsonl ("fmb_meta").
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from fmb_core.atomic import atomic_dir
from fmb_core.errors import ParameterError, check_choice, check_range
from sim.lerobot_columns import (
    BOOKKEEPING,
    RGB,
    STATE_LAYOUT,
    STATE_NAMES,
    STATE_NAMES_OF,
    append_episode,
    episode_columns,
    episode_stats,
    feature,
    flat_names,
    frame_table,
    signature,
    table_to_data,
)
from sim.store import EpisodeStore

__all__ = ["STATE_LAYOUT", "STATE_NAMES", "STATE_NAMES_OF", "export_lerobot", "import_lerobot"]

CODEBASE_VERSION = "v2.1"
SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")
EXPORT_VERSIONS = ("v2.1", "v3.0")
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


def export_lerobot(
    store: EpisodeStore,
    out_dir: str | Path,
    task_text: str | None = None,
    progress: bool = True,
    version: str = CODEBASE_VERSION,
) -> Path:
    """Write every episode of `store` as a LeRobot dataset at `out_dir`, all at once.

    Args:
        store: episodes with the keys listed in the module docstring; fps [Hz] from store.meta
            (default 10), action/state names from store.meta "action_names"/"state_names".
        out_dir: created or replaced (only if empty or already a LeRobot dataset).
        task_text: language instruction for every episode; default: each episode's meta "task".
        progress: show a tqdm bar.
        version: "v2.1" (one file per episode) or "v3.0" (`sim.lerobot_v3`: many episodes per file).

    Returns:
        The dataset folder, absolute.
    """
    check_choice("version", version, EXPORT_VERSIONS)
    if version == "v3.0":
        from sim.lerobot_v3 import export_v3

        return export_v3(store, out_dir, task_text, progress)
    out = Path(out_dir).absolute()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "meta/info.json").is_file())):
        raise ParameterError(f"{out} exists and is not a LeRobot dataset; refusing to replace it")
    indices = store.episode_indices()
    if not indices:
        raise ParameterError(f"episode store {store.root} is empty; nothing to export")
    fps = check_range("store fps", store.meta.get("fps", 10), 1e-3, 1e4, unit="Hz")
    tasks: dict[str, int] = {}
    features, episodes, stats, total = None, [], [], 0
    with atomic_dir(out) as tmp:
        for ep, index in enumerate(tqdm(indices, desc="export lerobot", unit="ep", disable=not progress)):
            episode = store.load(index)
            task = task_text or str(episode.meta.get("task") or store.meta.get("task", ""))
            cols, videos, feats = episode_columns(episode.data, episode.meta, store.meta, fps)
            steps = len(cols["action"])
            frame = np.arange(steps, dtype=np.int64)
            cols.update(
                timestamp=(frame / fps).astype(np.float32),
                frame_index=frame,
                episode_index=np.full(steps, ep, np.int64),
                index=frame + total,
                task_index=np.full(steps, tasks.setdefault(task, len(tasks)), np.int64),
            )
            feats.update({k: feature(cols[k]) for k in BOOKKEEPING})
            chunk = ep // CHUNKS_SIZE
            for key, frames in videos.items():
                path = tmp / VIDEO_PATH.format(episode_chunk=chunk, video_key=key, episode_index=ep)
                feats[key]["info"]["video.codec"] = _encode_video(path, frames, fps)
            if features is None:
                features = feats
            elif signature(feats) != signature(features):
                raise ParameterError(
                    f"episode {index} has features {signature(feats)}, unlike the first episode's {signature(features)}"
                )
            path = tmp / DATA_PATH.format(episode_chunk=chunk, episode_index=ep)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(frame_table(cols), path)
            ep_stats = {k: episode_stats(v) for k, v in cols.items()} | {
                k: episode_stats(v, True) for k, v in videos.items()
            }
            stats.append({"episode_index": ep, "stats": ep_stats})
            episodes.append({"episode_index": ep, "tasks": [task], "length": steps, "fmb_meta": episode.meta})
            total += steps
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": store.meta.get("robot_type") or "franka",
            "total_episodes": len(episodes),
            "total_frames": total,
            "total_tasks": len(tasks),
            "total_videos": len(episodes) * len(videos),
            "total_chunks": (len(episodes) - 1) // CHUNKS_SIZE + 1,
            "chunks_size": CHUNKS_SIZE,
            "fps": int(fps) if fps.is_integer() else fps,
            "splits": {"train": f"0:{len(episodes)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if videos else None,
            "features": features,
        }
        (tmp / "meta").mkdir()
        (tmp / "meta/info.json").write_text(json.dumps(info, indent=4) + "\n")
        _write_jsonl(tmp / "meta/episodes.jsonl", episodes)
        _write_jsonl(tmp / "meta/tasks.jsonl", [{"task_index": i, "task": t} for t, i in tasks.items()])
        _write_jsonl(tmp / "meta/episodes_stats.jsonl", stats)
    return out


def import_lerobot(
    src_dir: str | Path, store_root: str | Path, max_episodes: int | None = None, progress: bool = True
) -> EpisodeStore:
    """Read a LeRobot v2.0/v2.1/v3.0 dataset into an EpisodeStore (resumable: done episodes are skipped).

    Args:
        src_dir: dataset folder holding meta/info.json.
        store_root: store to create or extend (its task/backend must match this dataset's).
        max_episodes: import only the first this many episodes.
        progress: show a tqdm bar.

    Returns:
        The store. Episode meta: "task_text" (the dataset's instruction), "task" (the same, or
        the original task for data we exported), "seed" (episode_index, or the original seed),
        "success" (from next.success, else None), "source": "lerobot", "lerobot_episode_index".

    Raises:
        ParameterError: naming the file, when `src_dir` is not a supported LeRobot dataset.
    """
    src = Path(src_dir).absolute()
    info = _read_info(src)
    features, fps = info["features"], float(info["fps"])
    v3 = None
    if info["codebase_version"] == "v3.0":
        from sim.lerobot_v3 import V3Reader

        v3 = V3Reader(src, info)
        tasks, episodes = v3.tasks, v3.episodes
    else:
        tasks = {t["task_index"]: t["task"] for t in _read_json(src / "meta/tasks.jsonl", required=False)}
        episodes = sorted(_read_json(src / "meta/episodes.jsonl"), key=lambda e: e["episode_index"])
    texts = sorted({t for e in episodes for t in e.get("tasks", [])} | set(tasks.values()))
    label = texts[0] if len(texts) == 1 else f"mixed ({len(texts)} tasks)"
    if max_episodes is not None:
        episodes = episodes[: int(check_range("max_episodes", max_episodes, 0, float("inf")))]
    state_names = flat_names(features.get("observation.state", {}).get("names"))
    store = EpisodeStore.create(
        store_root,
        {
            "task": label,
            "backend": "lerobot",
            "fps": fps,
            "source": "lerobot",
            "robot_type": info.get("robot_type"),
            "state_names": state_names,
            "features": features,
        },
    )
    done = {store.load_meta(i).get("lerobot_episode_index") for i in store.episode_indices()}
    for ep in tqdm(episodes, desc="import lerobot", unit="ep", disable=not progress):
        idx = int(ep["episode_index"])
        if idx in done:
            continue
        if v3 is not None:
            append_episode(store, v3.episode_data(ep, state_names), ep, tasks, label, src)
            continue
        chunk = idx // int(info.get("chunks_size", CHUNKS_SIZE))
        path = src / info["data_path"].format(episode_chunk=chunk, episode_index=idx)
        if not path.is_file():
            raise ParameterError(f"{src} is not a complete LeRobot dataset: {path} is missing")
        table = pq.read_table(path)
        data = table_to_data(table, features, state_names)
        for key, ft in features.items():
            if ft.get("dtype") == "video" and key.startswith("observation.images."):
                vpath = src / info["video_path"].format(episode_chunk=chunk, video_key=key, episode_index=idx)
                data[RGB + key.removeprefix("observation.images.")] = _decode_video(vpath, table.num_rows)
        append_episode(store, data, ep, tasks, label, src)
    return store


def _encode_video(path: Path, frames: np.ndarray, fps: float) -> str:
    """Encode (T, H, W, 3) uint8 frames (H, W even) as mp4; return the codec name ("h264"/"mpeg4")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        options = {"crf": "18", "g": "2"} if codec == "libx264" else {"g": "2"}
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec != "libx264":
            stream.bit_rate = 16 * frames.shape[1] * frames.shape[2]  # [bit/s]
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return "h264" if codec == "libx264" else codec


def _decode_video(path: Path, steps: int) -> np.ndarray:
    if not path.is_file():
        raise ParameterError(f"LeRobot dataset is incomplete: {path} is missing")
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(frames) < steps:
        raise ParameterError(f"{path}: {len(frames)} frames, but the episode has {steps}")
    return np.stack(frames[:steps])


def _read_info(src: Path) -> dict:
    path = src / "meta/info.json"
    if not path.is_file():
        raise ParameterError(f"{src} is not a LeRobot dataset: {path} is missing")
    info = _read_json(path)[0]
    if info.get("codebase_version") not in SUPPORTED_VERSIONS:
        raise ParameterError(
            f"{path}: codebase_version {info.get('codebase_version')!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_VERSIONS)}"
        )
    missing = [k for k in ("fps", "features", "data_path") if k not in info]
    if missing:
        raise ParameterError(f"{path}: missing {', '.join(missing)}")
    return info


def _read_json(path: Path, required: bool = True) -> list[dict]:
    """The objects of a .json file (one) or a .jsonl file (one a line); [] for a missing optional file."""
    if not path.is_file():
        if required:
            raise ParameterError(f"LeRobot dataset is incomplete: {path} is missing")
        return []
    try:
        text = path.read_text()
        return [json.loads(text)] if path.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
    except (OSError, ValueError) as e:
        raise ParameterError(f"{path}: not valid JSON ({e})") from None


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
