"""LeRobot dataset format v3.0 (what LeRobot >= 0.4 writes): export an EpisodeStore, read a dataset.

Layout (LeRobot's `src/lerobot/datasets/utils.py`, `dataset_metadata.py` and
`v30/convert_dataset_v21_to_v30.py`; written directly with pyarrow and PyAV, no lerobot package)::

    meta/info.json                                 codebase_version "v3.0", fps, features, paths, sizes
    meta/stats.json                                stats over the whole dataset, per feature
    meta/tasks.parquet                             task_index, indexed by the task text (pandas index "task")
    meta/episodes/chunk-000/file-000.parquet       one row per episode (below)
    data/chunk-XXX/file-XXX.parquet                the frames of many episodes (rolled over at ~100 MB)
    videos/<key>/chunk-XXX/file-XXX.mp4            many episodes per file, one after another (~200 MB)

Episode row: episode_index, tasks (list of text), length, data/chunk_index, data/file_index,
dataset_from_index, dataset_to_index (global frame index, end exclusive), per video key
videos/<key>/chunk_index, file_index, from_timestamp, to_timestamp [s] (the episode's span in that
file), meta/episodes/chunk_index, file_index, stats/<feature>/<min|max|mean|std|count>, and ours:
fmb_meta (the episode's store metadata as JSON). Frame rows keep the v2.1 columns (timestamp from 0
within the episode, frame_index, episode_index, index, task_index); the column mapping is
`sim.lerobot`'s.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from fmb_core.atomic import atomic_dir
from fmb_core.errors import ParameterError, check_range
from sim import lerobot_columns as columns
from sim.store import EpisodeStore

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def next_file(chunk: int, file: int, chunks_size: int | None = None) -> tuple[int, int]:
    """The (chunk, file) indices after (chunk, file), `chunks_size` files a chunk (default CHUNKS_SIZE):
    LeRobot's `update_chunk_file_indices`."""
    chunks_size = chunks_size or CHUNKS_SIZE
    return (chunk + 1, 0) if file + 1 >= chunks_size else (chunk, file + 1)


class _ParquetFiles:
    """Frame tables appended to data/chunk-XXX/file-XXX.parquet, a new file past `limit_mb`."""

    def __init__(self, root: Path, limit_mb: float):
        self.root, self.limit = root, limit_mb * 1e6
        self.chunk, self.file, self.bytes, self.writer = 0, 0, 0, None

    def add(self, table: pa.Table) -> dict:
        if self.writer is not None and self.bytes + table.nbytes > self.limit:
            self.close()
            self.chunk, self.file = next_file(self.chunk, self.file)
        if self.writer is None:
            path = self.root / DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer, self.bytes = pq.ParquetWriter(path, table.schema), 0
        self.writer.write_table(table)
        self.bytes += table.nbytes
        return {"data/chunk_index": self.chunk, "data/file_index": self.file}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _VideoFiles:
    """Episodes' frames of one video key appended to videos/<key>/chunk-XXX/file-XXX.mp4 (h264, else
    mpeg4; yuv420p), a new file past `limit_mb`; frame i of a file is shown at i / fps [s]."""

    def __init__(self, root: Path, key: str, fps: float, limit_mb: float):
        self.root, self.key, self.fps, self.limit = root, key, fps, limit_mb * 1e6
        self.codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self.chunk, self.file, self.frames, self.bytes = 0, 0, 0, 0
        self.container, self.stream, self.path = None, None, None

    def add(self, frames: np.ndarray) -> dict:
        """Encode (T, H, W, 3) uint8 frames (H, W even); return the episode row's video columns."""
        if self.container is not None and self.bytes >= self.limit:
            self.close()
            self.chunk, self.file = next_file(self.chunk, self.file)
        if self.container is None:
            self.path = self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=self.chunk, file_index=self.file)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.container, self.frames, self.bytes = av.open(str(self.path), "w"), 0, 0
            # zerolatency: a packet per frame (no lookahead), so the file's size is known as it grows
            options = {"crf": "18", "g": "2", "tune": "zerolatency"} if self.codec == "libx264" else {"g": "2"}
            rate = Fraction(self.fps).limit_denominator(1001)
            self.stream = self.container.add_stream(self.codec, rate=rate, options=options)
            self.stream.width, self.stream.height, self.stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            if self.codec != "libx264":
                self.stream.bit_rate = 16 * frames.shape[1] * frames.shape[2]  # [bit/s]
        start = self.frames
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = self.frames
            packets = self.stream.encode(frame)
            self.bytes += sum(p.size for p in packets)
            self.container.mux(packets)
            self.frames += 1
        k = f"videos/{self.key}"
        return {
            f"{k}/chunk_index": self.chunk,
            f"{k}/file_index": self.file,
            f"{k}/from_timestamp": start / self.fps,
            f"{k}/to_timestamp": self.frames / self.fps,
        }

    def close(self) -> None:
        if self.container is not None:
            self.container.mux(self.stream.encode())
            self.container.close()
            self.container = None

    @property
    def codec_name(self) -> str:
        return "h264" if self.codec == "libx264" else self.codec


def export_v3(store: EpisodeStore, out_dir: str | Path, task_text: str | None = None, progress: bool = True) -> Path:
    """Write every episode of `store` as a LeRobot v3.0 dataset at `out_dir`, all at once (see
    `sim.lerobot.export_lerobot` for the arguments; the module docstring for the layout)."""
    out = Path(out_dir).absolute()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "meta/info.json").is_file())):
        raise ParameterError(f"{out} exists and is not a LeRobot dataset; refusing to replace it")
    indices = store.episode_indices()
    if not indices:
        raise ParameterError(f"episode store {store.root} is empty; nothing to export")
    fps = check_range("store fps", store.meta.get("fps", 10), 1e-3, 1e4, unit="Hz")
    tasks: dict[str, int] = {}
    features, rows, total = None, [], 0
    with atomic_dir(out) as tmp:
        data_files, videos_files = _ParquetFiles(tmp, DATA_FILES_SIZE_IN_MB), {}
        try:
            for ep, index in enumerate(tqdm(indices, desc="export lerobot v3.0", unit="ep", disable=not progress)):
                episode = store.load(index)
                task = task_text or str(episode.meta.get("task") or store.meta.get("task", ""))
                cols, videos, feats = columns.episode_columns(episode.data, episode.meta, store.meta, fps)
                steps = len(cols["action"])
                frame = np.arange(steps, dtype=np.int64)
                cols.update(
                    timestamp=(frame / fps).astype(np.float32),
                    frame_index=frame,
                    episode_index=np.full(steps, ep, np.int64),
                    index=frame + total,
                    task_index=np.full(steps, tasks.setdefault(task, len(tasks)), np.int64),
                )
                feats.update({k: columns.feature(cols[k]) for k in columns.BOOKKEEPING})
                if features is None:
                    features = feats
                elif columns.signature(feats) != columns.signature(features):
                    raise ParameterError(
                        f"episode {index} has features {columns.signature(feats)}, "
                        f"unlike the first episode's {columns.signature(features)}"
                    )
                row = {"episode_index": ep, "tasks": [task], "length": steps}
                row |= data_files.add(columns.frame_table(cols))
                row |= {"dataset_from_index": total, "dataset_to_index": total + steps}
                for key, frames in videos.items():
                    if key not in videos_files:
                        videos_files[key] = _VideoFiles(tmp, key, fps, VIDEO_FILES_SIZE_IN_MB)
                    row |= videos_files[key].add(frames)
                row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
                stats = {k: columns.episode_stats(v) for k, v in cols.items()} | {
                    k: columns.episode_stats(v, True) for k, v in videos.items()
                }
                row |= {f"stats/{k}/{name}": value for k, st in stats.items() for name, value in st.items()}
                row["fmb_meta"] = json.dumps(episode.meta)
                rows.append(row)
                total += steps
        finally:
            data_files.close()
            for writer in videos_files.values():
                writer.close()
        for key, writer in videos_files.items():
            features[key]["info"]["video.codec"] = writer.codec_name
        for ft in features.values():
            if ft["dtype"] != "video":
                ft["fps"] = int(fps) if fps.is_integer() else fps
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": store.meta.get("robot_type") or "franka",
            "total_episodes": len(rows),
            "total_frames": total,
            "total_tasks": len(tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
            "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
            "fps": int(fps) if fps.is_integer() else fps,
            "splits": {"train": f"0:{len(rows)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if videos_files else None,
            "features": features,
        }
        (tmp / "meta").mkdir()
        (tmp / "meta/info.json").write_text(json.dumps(info, indent=4) + "\n")
        (tmp / "meta/stats.json").write_text(json.dumps(aggregate_stats(rows), indent=4) + "\n")
        write_tasks(tmp / "meta/tasks.parquet", tasks)
        path = tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), path)
    return out


def aggregate_stats(rows: list[dict]) -> dict:
    """Whole-dataset stats from the episode rows' stats/<feature>/<stat> (count-weighted mean and
    pooled std, as LeRobot's `aggregate_stats`)."""
    keys = sorted({k.split("/")[1] for k in rows[0] if k.startswith("stats/")})
    out = {}
    for key in keys:
        get = {s: [np.asarray(r[f"stats/{key}/{s}"], np.float64) for r in rows] for s in ("min", "max", "mean", "std")}
        counts = np.array([r[f"stats/{key}/count"][0] for r in rows], np.float64)
        w = counts.reshape(-1, *[1] * get["mean"][0].ndim) / counts.sum()
        means, stds = np.stack(get["mean"]), np.stack(get["std"])
        mean = (w * means).sum(axis=0)
        var = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0)
        out[key] = {
            "min": np.min(np.stack(get["min"]), axis=0).tolist(),
            "max": np.max(np.stack(get["max"]), axis=0).tolist(),
            "mean": mean.tolist(),
            "std": np.sqrt(var).tolist(),
            "count": [int(counts.sum())],
        }
    return out


def write_tasks(path: Path, tasks: dict[str, int]) -> None:
    """meta/tasks.parquet as pandas writes LeRobot's DataFrame: column task_index, index "task"."""
    table = pa.table({"task_index": pa.array(list(tasks.values()), pa.int64()), "task": list(tasks)})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }  # fmt: skip
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()}), path)


class V3Reader:
    """The episodes of a v3.0 dataset at `src`: `tasks` {index: text}, `episodes` (rows, without
    stats, by episode_index) and `episode_data(row, state_names)` (store arrays, videos decoded)."""

    def __init__(self, src: Path, info: dict):
        self.src, self.info, self.features = src, info, info["features"]
        files = sorted((src / "meta/episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise ParameterError(
                f"LeRobot dataset is incomplete: {src / 'meta/episodes'} holds no chunk-*/file-*.parquet"
            )
        rows = []
        for f in files:
            table = pq.read_table(f)
            rows += table.select([c for c in table.column_names if not c.startswith("stats/")]).to_pylist()
        self.episodes = sorted(rows, key=lambda r: r["episode_index"])
        path = src / "meta/tasks.parquet"
        self.tasks = {}
        if path.is_file():
            table = pq.read_table(path)
            text = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
            if text is None:
                raise ParameterError(f"{path}: no task column; columns: {', '.join(table.column_names)}")
            self.tasks = dict(zip(table.column("task_index").to_pylist(), table.column(text).to_pylist()))
        self._data: tuple[Path | None, pa.Table | None] = (None, None)
        self._videos: dict[str, tuple[Path, np.ndarray, np.ndarray]] = {}

    def episode_data(self, ep: dict, state_names) -> dict[str, np.ndarray]:
        idx = int(ep["episode_index"])
        path = self.src / self.info["data_path"].format(
            chunk_index=int(ep["data/chunk_index"]), file_index=int(ep["data/file_index"])
        )
        if self._data[0] != path:
            if not path.is_file():
                raise ParameterError(f"{self.src} is not a complete LeRobot dataset: {path} is missing")
            self._data = (path, pq.read_table(path))
        table = self._data[1]
        rows = table.filter(pc.equal(table.column("episode_index"), idx))
        if "frame_index" in rows.column_names:
            rows = rows.sort_by("frame_index")
        if rows.num_rows != int(ep["length"]):
            raise ParameterError(f"{path}: episode {idx} has {rows.num_rows} frames, its meta says {ep['length']}")
        data = columns.table_to_data(rows, self.features, state_names)
        for key, ft in self.features.items():
            if ft.get("dtype") == "video" and key.startswith("observation.images."):
                data[columns.RGB + key.removeprefix("observation.images.")] = self._video_frames(key, ep)
        return data

    def _video_frames(self, key: str, ep: dict) -> np.ndarray:
        k = f"videos/{key}"
        path = self.src / self.info["video_path"].format(
            video_key=key, chunk_index=int(ep[f"{k}/chunk_index"]), file_index=int(ep[f"{k}/file_index"])
        )
        if key not in self._videos or self._videos[key][0] != path:
            if not path.is_file():
                raise ParameterError(f"LeRobot dataset is incomplete: {path} is missing")
            with av.open(str(path)) as container:
                decoded = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
            times = np.array([t for t, _ in decoded])
            self._videos[key] = (path, times, np.stack([f for _, f in decoded]))
        _, times, frames = self._videos[key]
        fps = float(self.features[key].get("info", {}).get("video.fps") or self.info["fps"])
        first = int(np.searchsorted(times, float(ep[f"{k}/from_timestamp"]) - 0.5 / fps))
        steps = int(ep["length"])
        if first + steps > len(frames):
            raise ParameterError(
                f"{path}: {len(frames) - first} frames from {ep[f'{k}/from_timestamp']} s, the episode has {steps}"
            )
        return frames[first : first + steps]
