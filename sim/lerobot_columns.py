"""The column mapping between episode stores and LeRobot datasets, one definition for both formats
(`sim.lerobot`: v2.x, `sim.lerobot_v3`: v3.0); the mapping is described in `sim.lerobot`'s docstring."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fmb_core.errors import ParameterError
from sim import observation
from sim.store import EpisodeStore

STATE_NAMES_OF = {
    observation.TCP_POSE: ("tcp_x", "tcp_y", "tcp_z", "tcp_qx", "tcp_qy", "tcp_qz", "tcp_qw"),
    observation.TCP_VEL: ("tcp_vx", "tcp_vy", "tcp_vz", "tcp_wx", "tcp_wy", "tcp_wz"),
    observation.WRENCH: ("force_x", "force_y", "force_z", "torque_x", "torque_y", "torque_z"),
    observation.Q: tuple(f"joint{i}_pos" for i in range(1, 8)),
    observation.DQ: tuple(f"joint{i}_vel" for i in range(1, 8)),
    observation.GRIPPER: ("gripper_width",),
}
"""LeRobot's names of each robot-state entry's components (`sim.observation.PROPRIOCEPTION`)."""
STATE_LAYOUT = tuple((observation.store_key(e.key), STATE_NAMES_OF[e.key]) for e in observation.PROPRIOCEPTION)
"""observation.state parts in the schema's order (`sim.observation.PROPRIOCEPTION`: [m, xyzw],
[m/s, rad/s], [N, N m], [rad], [rad/s], [m]), as store keys with LeRobot's component names."""
STATE_NAMES = [n for _, names in STATE_LAYOUT for n in names]
RENAME = {
    "observation.state": observation.store_key(observation.STATE),
    "action": "action",
    "next.reward": "reward",
    "next.done": "done",
    "next.success": "success",
}
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
STATE = observation.store_key(observation.STATE)
RGB = observation.store_key(observation.RGB_PREFIX)
STORE_ONLY = tuple(
    observation.store_key(k)
    for k in (observation.RGB_PREFIX, observation.DEPTH_PREFIX, observation.POINTS, observation.STATE)
)


def table_to_data(table, features: dict, state_names) -> dict[str, np.ndarray]:
    """Store arrays of one episode's parquet rows (numeric columns, the state's parts when the names
    are ours, "image" features decoded; videos are the caller's)."""
    data = {}
    for name in table.column_names:
        dtype = features.get(name, {}).get("dtype")
        if (name in BOOKKEEPING and name != "task_index") or dtype in ("video", "image", "string"):
            continue
        a = column_to_numpy(table.column(name))
        if a.dtype.kind in "biuf":
            data[store_key_of(name)] = a
    if state_names == STATE_NAMES and STATE in data:
        parts = np.split(data[STATE], np.cumsum([len(n) for _, n in STATE_LAYOUT])[:-1], axis=1)
        data.update({key: p for (key, _), p in zip(STATE_LAYOUT, parts)})
    for key, ft in features.items():
        if ft.get("dtype") == "image" and key.startswith("observation.images.") and key in table.column_names:
            data[RGB + key.removeprefix("observation.images.")] = decode_images(table.column(key))
    return data


def append_episode(store: EpisodeStore, data: dict, ep: dict, tasks: dict, label: str, src: Path) -> int:
    """Commit one imported episode with its meta (see `import_lerobot`)."""
    idx = int(ep["episode_index"])
    task_index = int(data.pop("task_index", [-1])[0])
    text = (list(ep.get("tasks") or []) or [tasks.get(task_index, label)])[0]
    meta = {"seed": idx, "task": text, "success": bool(data["success"].any()) if "success" in data else None}
    fmb_meta = ep.get("fmb_meta") or {}
    fmb_meta = json.loads(fmb_meta) if isinstance(fmb_meta, str) else fmb_meta
    meta.update({k: v for k, v in fmb_meta.items() if k not in ("episode_index", "num_steps")})
    meta.update(task_text=text, source="lerobot", lerobot_episode_index=idx, dataset=str(src))
    return store.append(data, meta)


def episode_columns(data: dict, meta: dict, store_meta: dict, fps: float):
    """Split one episode into parquet columns, videos and their features."""
    steps = len(next(iter(data.values())))
    if all(k in data for k, _ in STATE_LAYOUT):
        state = np.concatenate([data[k].reshape(steps, -1) for k, _ in STATE_LAYOUT], axis=1)
        state_names = STATE_NAMES
    elif STATE in data:
        state, state_names = data[STATE].reshape(steps, -1), store_meta.get("state_names")
    else:
        missing = [k for k, _ in STATE_LAYOUT if k not in data]
        raise ParameterError(f"episode {meta.get('episode_index')} lacks {', '.join(missing)} (and obs/state)")
    if "action" not in data:
        raise ParameterError(f"episode {meta.get('episode_index')} has no 'action'; keys: {', '.join(data)}")
    done = np.arange(steps) == steps - 1
    cols = {
        "observation.state": state.astype(np.float32),
        "action": data["action"].reshape(steps, -1),
        "next.reward": data.get("reward", np.zeros(steps)).astype(np.float32),
        "next.done": data.get("done", done).astype(bool),
        "next.success": data.get("success", done & bool(meta.get("success"))).astype(bool),
    }
    names = {"observation.state": state_names, "action": store_meta.get("action_names")}
    used = {k for k, _ in STATE_LAYOUT} | {"action", "reward", "done", "success"}
    for key, a in data.items():
        if key not in used and not key.startswith(STORE_ONLY) and a.ndim <= 2:
            name = (
                "observation." + key.removeprefix(observation.STORE_PREFIX)
                if key.startswith(observation.STORE_PREFIX)
                else key
            )
            cols[name.replace("/", ".")] = a
    feats = {k: feature(v, names.get(k)) for k, v in cols.items()}
    videos = {}
    for key, frames in data.items():
        if key.startswith(RGB):
            h, w = frames.shape[1:3]
            frames = videos["observation.images." + key[8:]] = np.pad(
                frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge"
            )
            feats["observation.images." + key[8:]] = {
                "dtype": "video",
                "shape": list(frames.shape[1:]),
                "names": ["height", "width", "channels"],
                "info": {
                    "video.fps": fps,
                    "video.height": frames.shape[1],
                    "video.width": frames.shape[2],
                    "video.channels": 3,
                    "video.codec": None,
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "has_audio": False,
                },
            }
    return cols, videos, feats


def feature(a: np.ndarray, names=None) -> dict:
    shape = list(a.shape[1:]) or [1]
    names = list(names) if names and len(names) == shape[0] else [f"{i}" for i in range(shape[0])]
    return {"dtype": a.dtype.name, "shape": shape, "names": names if a.ndim == 2 else None}


def signature(features: dict) -> dict:
    return {k: (f["dtype"], tuple(f["shape"])) for k, f in features.items()}


def frame_table(cols: dict):
    """Scalar columns, and (T, D) arrays as fixed-size lists (LeRobot's Sequence(length=D))."""
    return pa.table(
        {
            k: pa.array(a)
            if a.ndim == 1
            else pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a).reshape(-1)), a.shape[1])
            for k, a in cols.items()
        }
    )


def episode_stats(a: np.ndarray, image: bool = False) -> dict:
    """LeRobot per-episode stats: (D,) per column, (1,) for scalars; images per channel in [0, 1]
    with shape (3, 1, 1), over at most 100 evenly spaced frames."""
    if image:
        a = a[np.unique(np.linspace(0, len(a) - 1, min(len(a), 100)).round().astype(int))] / 255.0
    axis, keep, f = ((0, 1, 2) if image else 0), a.ndim == 1, a.astype(np.float64)
    out = {
        k: fn(a if k in ("min", "max") else f, axis=axis, keepdims=keep)
        for k, fn in (("min", np.min), ("max", np.max), ("mean", np.mean), ("std", np.std))
    }
    return {k: (v.reshape(3, 1, 1) if image else v).tolist() for k, v in out.items()} | {"count": [len(a)]}


def decode_images(column) -> np.ndarray:
    """LeRobot "image" features: PNG/JPEG bytes in a {bytes, path} struct column."""

    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(v["bytes"])).convert("RGB")) for v in column.to_pylist()])


def column_to_numpy(column) -> np.ndarray:
    """(T,) for scalar columns, (T, ...) for (nested) list columns of equal lengths."""
    arr, shape = column.combine_chunks(), [len(column)]
    while isinstance(arr.type, (pa.ListType, pa.LargeListType, pa.FixedSizeListType)):
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if len(lengths) and lengths.min() != lengths.max():
            raise ParameterError(f"column of ragged lists (lengths {lengths.min()}..{lengths.max()})")
        shape, arr = shape + [int(lengths[0]) if len(lengths) else 0], arr.flatten()
    return arr.to_numpy(zero_copy_only=False).reshape(shape)


def store_key_of(name: str) -> str:
    if name in RENAME:
        return RENAME[name]
    if name.startswith("observation."):
        return observation.STORE_PREFIX + name.removeprefix("observation.").replace(".", "/")
    return name.replace(".", "/")


def flat_names(names) -> list[str] | None:
    """LeRobot names are a list, or a dict of one list ({"motors": [...]})."""
    if isinstance(names, dict):
        names = next(iter(names.values()), None)
    return [str(n) for n in names] if isinstance(names, list) else None
