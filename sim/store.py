"""Demonstration episodes on disk: one compressed npz per episode, each committed atomically.

Layout::

    ROOT/store.json                      {"schema": "fmb-episodes/1", "meta": {task, backend, fps, ...}}
    ROOT/episodes/episode_000000.npz     arrays of one episode + its metadata JSON ("__meta__", 0-d str)
    ROOT/episodes/.episode_000001.npz.tmp-<pid>-<random>   an episode being written (never listed)

An episode is written to a temporary file in `episodes/` and renamed into place with `os.replace`,
so its data and metadata appear together or not at all: a crash or Ctrl-C loses at most the episode
in progress, and a rerun resumes (`done_seeds` tells a collector which seeds to skip). Temporary
files left by a dead process are removed when the store is opened. `np.load` reads npz members
lazily, so loading low-dimensional keys does not decode images. One writer per store at a time.

Episode keys used across `sim/` (others are allowed), T steps:
    "obs/tcp_pose" (T, 7) float32: position [m] + quaternion xyzw, robot base frame.
    "obs/tcp_vel" (T, 6): linear [m/s] + angular [rad/s] TCP velocity, base frame.
    "obs/wrench" (T, 6): force [N] + torque [N m] at the TCP.
    "obs/q", "obs/dq" (T, 7): joint positions [rad] and velocities [rad/s].
    "obs/gripper" (T, 1): finger opening [m].
    "obs/rgb/<camera>" (T, H, W, 3) uint8; "obs/depth/<camera>" (T, H, W) float32 [m].
    "obs/points" (T, N, 6) float32: xyz [m] + rgb in [0, 1].
    "action" (T, 7) float32; "reward" (T,) float32; "progress" (T,) float32 in [0, 1].
    "stage" (T,) int16: in a chain's episodes, the index of the stage each step belongs to.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fmb_core.errors import ParameterError
from sim.exceptions import SimError

SCHEMA = "fmb-episodes/1"
META_KEY = "__meta__"
MATCH_KEYS = ("task", "backend")
"""Store-level keys that must agree when `create` reopens an existing store."""
REQUIRED_META = {"seed": (int,), "task": (str,), "success": (bool, type(None))}
"""Episode meta keys and their types; success is None where unknown (imported foreign data)."""

_EPISODE_RE = re.compile(r"^episode_(\d{6,})\.npz$")
_TEMP_RE = re.compile(r"^\.episode_\d+\.npz\.tmp-(\d+)-[0-9a-f]+$")


class Episode(NamedTuple):
    """One stored episode: arrays with a shared leading length T and its metadata."""

    data: dict[str, np.ndarray]
    meta: dict


class EpisodeStore:
    """Episodes of one task and backend under `root`. Build with `create` or `open`."""

    def __init__(self, root: Path, meta: dict):
        self.root = Path(root)
        self.meta = meta
        self._meta_cache: dict[int, dict] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, meta: dict, exist_ok: bool = True) -> EpisodeStore:
        """Create a store at `root`, or reopen it when it exists and `exist_ok`.

        Args:
            root: folder of the store; created with its parents.
            meta: store-level metadata (JSON-serialisable), e.g. task, backend, fps [Hz], features.
            exist_ok: reopen an existing store instead of raising.

        Raises:
            ParameterError: the store exists and `exist_ok` is False, its "task" or "backend"
                differs from `meta`'s, or `root` is a non-empty folder that is not a store.
        """
        root = Path(root)
        if not isinstance(meta, dict):
            raise ParameterError(f"store meta must be a dict, got {type(meta).__name__}")
        if (root / "store.json").exists():
            if not exist_ok:
                raise ParameterError(f"episode store {root} already exists (pass exist_ok=True to reopen it)")
            store = cls.open(root)
            for key in MATCH_KEYS:
                if key in meta and store.meta.get(key) != meta[key]:
                    raise ParameterError(
                        f"episode store {root} has {key}={store.meta.get(key)!r}, but {key}={meta[key]!r} was given"
                    )
            return store
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise ParameterError(f"{root} exists and is not an episode store (no store.json)")
        meta = _jsonable(meta, "store meta")
        (root / "episodes").mkdir(parents=True, exist_ok=True)
        _write_json_atomic(root / "store.json", {"schema": SCHEMA, "meta": meta})
        return cls(root, meta)

    @classmethod
    def open(cls, root: str | Path) -> EpisodeStore:
        """Open an existing store; remove temporary files left by dead writers.

        Raises:
            SimError (an FmbError): `root` is missing, has no readable store.json, or another schema.
        """
        root = Path(root)
        path = root / "store.json"
        if not path.is_file():
            raise SimError(f"no episode store at {root}: {path} is missing")
        try:
            head = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise SimError(f"{path}: cannot read ({e})") from None
        if not isinstance(head, dict) or head.get("schema") != SCHEMA:
            got = head.get("schema") if isinstance(head, dict) else None
            raise SimError(f"{path}: schema {got!r}, expected {SCHEMA!r}")
        (root / "episodes").mkdir(exist_ok=True)
        store = cls(root, head.get("meta", {}))
        store._remove_stale_temps()
        return store

    # -- writing -------------------------------------------------------------------------------
    def append(self, data: dict[str, np.ndarray], meta: dict) -> int:
        """Commit one episode and return its index.

        Args:
            data: name -> (T, ...) array, the same T >= 1 for all; float arrays must be finite.
                Names starting with "__" are reserved.
            meta: JSON-serialisable; needs "seed" (int), "task" (str), "success" (bool or None).
                "episode_index" and "num_steps" are added.

        Raises:
            ParameterError: naming the key with a ragged length, a non-finite value, an object
                dtype or a missing/mistyped meta entry.
        """
        arrays, steps = _check_data(data)
        meta = _check_meta(meta)
        index = max(self.episode_indices(), default=-1) + 1
        meta.update(episode_index=index, num_steps=steps)
        arrays[META_KEY] = np.array(json.dumps(meta))
        folder = self.root / "episodes"
        final = folder / f"episode_{index:06d}.npz"
        tmp = folder / f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._meta_cache[index] = meta
        return index

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.episode_indices())

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.root)!r}, episodes={len(self)})"

    def episode_indices(self) -> list[int]:
        """Indices of the committed episodes, ascending."""
        names = os.listdir(self.root / "episodes")
        return sorted(int(m.group(1)) for m in map(_EPISODE_RE.match, names) if m)

    def load(self, index: int, keys: list[str] | None = None) -> Episode:
        """Load episode `index`; with `keys`, decode only those arrays.

        Raises:
            ParameterError: no such episode, or a key it does not hold (the message lists them).
        """
        with self._open_npz(index) as z:
            names = [n for n in z.files if n != META_KEY]
            if keys is None:
                keys = names
            missing = [k for k in keys if k not in names]
            if missing:
                raise ParameterError(f"episode {index} has no {', '.join(missing)}; keys: {', '.join(names)}")
            data = {k: z[k] for k in keys}
            meta = json.loads(str(z[META_KEY][()]))
        self._meta_cache[index] = meta
        return Episode(data, meta)

    def load_meta(self, index: int) -> dict:
        """Metadata of episode `index` (cached; episodes never change once committed)."""
        if index not in self._meta_cache:
            with self._open_npz(index) as z:
                self._meta_cache[index] = json.loads(str(z[META_KEY][()]))
        return dict(self._meta_cache[index])

    def iter_episodes(self, keys: list[str] | None = None) -> Iterator[Episode]:
        """Yield every episode in index order (see `load` for `keys`)."""
        for index in self.episode_indices():
            yield self.load(index, keys)

    def done_seeds(self) -> set[int]:
        """Seeds of the stored episodes: a resumed collection skips these."""
        return {int(self.load_meta(i)["seed"]) for i in self.episode_indices()}

    def total_steps(self) -> int:
        """Number of steps over all episodes."""
        return sum(int(self.load_meta(i)["num_steps"]) for i in self.episode_indices())

    # -- helpers -------------------------------------------------------------------------------
    def _open_npz(self, index: int):
        path = self.root / "episodes" / f"episode_{int(index):06d}.npz"
        if not path.is_file():
            indices = self.episode_indices()
            have = f"{indices[0]}..{indices[-1]}" if indices else "none"
            raise ParameterError(f"episode {index} is not in {self.root} (episodes: {have})")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise SimError(f"{path}: cannot read ({e})") from None

    def _remove_stale_temps(self) -> None:
        for name in os.listdir(self.root / "episodes"):
            m = _TEMP_RE.match(name)
            if m and not _pid_alive(int(m.group(1))):
                (self.root / "episodes" / name).unlink(missing_ok=True)


def _check_data(data: dict) -> tuple[dict[str, np.ndarray], int]:
    if not isinstance(data, dict) or not data:
        raise ParameterError("episode data must be a non-empty dict of arrays")
    arrays, lengths = {}, {}
    for key, value in data.items():
        if not isinstance(key, str) or key.startswith("__"):
            raise ParameterError(f"episode key {key!r} must be a str not starting with '__'")
        a = np.asarray(value)
        if a.ndim == 0 or a.dtype.kind in "OUSV":
            raise ParameterError(f"episode array {key!r} must be numeric with shape (T, ...), got {a.dtype} {a.shape}")
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise ParameterError(f"episode array {key!r} holds NaN or inf")
        arrays[key], lengths[key] = a, len(a)
    steps = set(lengths.values())
    if len(steps) != 1 or 0 in steps:
        raise ParameterError(f"episode arrays need one leading length T >= 1, got {lengths}")
    return arrays, steps.pop()


def _check_meta(meta: dict) -> dict:
    if not isinstance(meta, dict):
        raise ParameterError(f"episode meta must be a dict, got {type(meta).__name__}")
    meta = _jsonable(meta, "episode meta")
    for key, types in REQUIRED_META.items():
        if key not in meta:
            raise ParameterError(f"episode meta needs {key!r}; got keys {sorted(meta)}")
        value = meta[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            names = " or ".join(t.__name__ for t in types)
            raise ParameterError(f"episode meta {key!r} must be {names}, got {value!r}")
    return meta


def _jsonable(meta: dict, what: str) -> dict:
    """Round-trip through JSON (numpy scalars and arrays become plain values)."""
    try:
        return json.loads(json.dumps(meta, default=_json_default))
    except (TypeError, ValueError) as e:
        raise ParameterError(f"{what} must be JSON-serialisable: {e}") from None


def _json_default(x):
    if isinstance(x, (np.generic, np.ndarray)):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"{type(x).__name__} is not JSON-serialisable")


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
