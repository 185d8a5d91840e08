"""Training windows over episode stores (the sim's npz store, or one imported from LeRobot).

Every step t of every episode is one window (see `policies.config` for the timeline)::

    observations  t-To+1 .. t             indices below 0 repeat the first observation
    actions       t-To+1 .. t-To+Tp       outside the episode: zero motion, gripper held as at
                                          the nearest edge (the robot waits; it never jumps);
                                          foreign data (not our delta-pose actions) repeats the
                                          edge action instead, as Diffusion Policy does

Episodes are loaded into memory once, already converted by `policies.common.features` (the local point
clouds are cut when loading, twice as many points as the policy takes; every training window draws
its own subset, a cheap augmentation), and batches are gathered with numpy fancy indexing: no
DataLoader workers are needed on a 2-core machine.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fmb_core.errors import ParameterError
from policies.common.features import (
    GOAL_POSE,
    MinMaxNormalizer,
    condition_vector,
    episode_features,
    goal_features,
    state_vector,
)
from policies.conditioners import conditioners_of
from policies.config import PolicyConfig, goal_key
from sim.observation import POINTS, STATE, STORE_PREFIX, TCP_POSE, store_key

GRIPPER = 6
"""Index of the gripper command in an action."""
POINT_POOL = 2
"""Local points kept per frame when loading, as a multiple of the points a window takes."""


def fit_config_to_data(config: PolicyConfig, stores: list) -> tuple[PolicyConfig, list[str]]:
    """Choose encoders from what the stores record: state parts that exist (or the flat
    "state" vector of imported data), no point encoder without clouds, and the skill list.
    Returns the adjusted config and one note per change (for the log)."""
    keys = set.intersection(*(_episode_keys(s) for s in stores))
    notes = []
    state_keys = tuple(k for k in config.state_keys if store_key(k) in keys)
    if config.goal:
        for store in stores:
            meta = store.load_meta(store.episode_indices()[0])
            key = goal_key(config, store.meta.get("task", ""))
            if key not in meta.get("targets", {}):
                known = ", ".join(meta.get("targets", {})) or "none"
                raise ParameterError(f"--goal {config.goal}: episodes in {store.root} have no target {key!r} ({known})")
        if store_key(TCP_POSE) not in keys:
            raise ParameterError("a goal is given relative to the TCP, but the data has no 'obs/tcp_pose'")
        state_keys = tuple(k for k in state_keys if k != "goal") + ("goal",)
    if not state_keys and store_key(STATE) in keys:
        state_keys = ("state",)
    if not state_keys:
        raise ParameterError(
            f"the data has none of the state observations {list(config.state_keys)} nor 'obs/state'; "
            f"it has: {', '.join(sorted(keys))}"
        )
    if [k for k in state_keys if k != "goal"] != [k for k in config.state_keys if k != "goal"]:
        notes.append(f"state inputs: {', '.join(state_keys)} (what the data records)")
    points = config.points
    if points and store_key(POINTS) not in keys:
        points = 0
        notes.append("no point clouds in the data: the point encoder is off")
    for conditioner in conditioners_of(config):
        conditioner.check_data(keys)
    if points and store_key(TCP_POSE) not in keys:
        raise ParameterError("point clouds are cut around the TCP, but the data has no 'obs/tcp_pose'")
    image_key = config.image_key
    if image_key and store_key(image_key) not in keys:
        raise ParameterError(f"--image {image_key!r}: the data has no 'obs/{image_key}'")
    skills = tuple(sorted({s.meta["task"] for s in stores}))
    config = dataclasses.replace(config, state_keys=state_keys, points=points, skills=skills)
    return config, notes


def _episode_keys(store) -> set[str]:
    indices = store.episode_indices()
    if not indices:
        raise ParameterError(f"episode store {store.root} holds no episodes")
    with np.load(store.root / "episodes" / f"episode_{indices[0]:06d}.npz") as z:
        return set(z.files)


def stored_inputs(config: PolicyConfig) -> list[str]:
    """The episode store keys a policy with `config` reads its observations from (sorted)."""
    keys = [store_key(k) for k in config.state_keys if k != "goal"]
    if config.goal:
        keys.append(store_key(TCP_POSE))
    if config.points:
        keys += [store_key(POINTS), store_key(TCP_POSE)]
    if config.image_key:
        keys.append(store_key(config.image_key))
    for conditioner in conditioners_of(config):
        keys += list(conditioner.data_keys)
    return sorted(set(keys))


class SequenceDataset:
    """Windows of (observation history, action chunk) from one or more episode stores.

    Args:
        stores: EpisodeStore objects (all of the policy's skills).
        config: the policy config (horizons, features).
        only_successful: skip episodes whose "success" is False (None = unknown is kept).
        seed: seed of the point subsampling when loading.
        progress: show a progress bar while loading.
    """

    def __init__(self, stores: list, config: PolicyConfig, only_successful: bool = True, seed: int = 0, progress=True):
        self.config = config
        self.goal_noise = (0.0, 0.0)
        """(position [m], rotation [rad]) standard deviations of the Gaussian noise added to the goal
        pose of every sampled window (per axis; the rotation as a rotation vector); (0, 0) = off.
        Set by training (`TrainConfig.goal_noise_position`, `goal_noise_rotation`)."""
        self._goal_columns: slice | None = None  # the goal features' columns in "state"
        rng = np.random.default_rng(seed)
        self.conditioners = conditioners = conditioners_of(config)  # built once: windows use them per batch
        keys = stored_inputs(config) + ["action"]
        load_config = dataclasses.replace(config, points=POINT_POOL * config.points)
        self.episodes: list[dict] = []
        self.families: list[str] = []
        total = sum(len(s) for s in stores)
        bar = tqdm(total=total, desc="load episodes", unit="ep", disable=not progress)
        for store in stores:
            for index in store.episode_indices():
                meta = store.load_meta(index)
                bar.update(1)
                if only_successful and meta.get("success") is False:
                    continue
                data = store.load(index, keys).data
                missing = [k for k in keys if k not in data]
                if missing:
                    raise ParameterError(f"{store.root} episode {index}: missing {', '.join(missing)}")
                obs = {k.removeprefix(STORE_PREFIX): v for k, v in data.items() if k.startswith(STORE_PREFIX)}
                if config.goal:  # the skill's target, the same at every step of the episode
                    obs[GOAL_POSE] = np.asarray(meta["targets"][goal_key(config, store.meta["task"])], np.float64)[None]
                feats = episode_features(obs, load_config, rng)
                feats["action"] = np.asarray(data["action"], np.float32)
                if config.goal and "goal" in config.state_keys:  # raw poses, for goal noise (`goal_noise`)
                    steps = len(feats["action"])
                    feats["goal_pose"] = np.broadcast_to(obs[GOAL_POSE], (steps, 7)).astype(np.float64)
                    feats["goal_tcp"] = np.asarray(obs[TCP_POSE], np.float64)
                    if self._goal_columns is None:
                        before = config.state_keys[: config.state_keys.index("goal")]
                        start = state_vector({k: v[:1] for k, v in obs.items()}, before).shape[-1] if before else 0
                        self._goal_columns = slice(start, start + 9)
                for conditioner in conditioners:
                    feats[conditioner.batch_key] = conditioner.episode_inputs(store, index, data)
                feats["cond"] = condition_vector(config, meta.get("task", ""), meta.get("family", ""))
                self.episodes.append(feats)
                self.families.append(meta.get("family", ""))
        bar.close()
        if not self.episodes:
            raise ParameterError("no usable episodes: every episode in the data failed (or the stores are empty)")
        self.lengths = np.array([len(e["action"]) for e in self.episodes])
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self._flat = {k: np.concatenate([e[k] for e in self.episodes]) for k in self.episodes[0] if k != "cond"}
        self._cond = np.stack([e["cond"] for e in self.episodes])
        self.zero_motion_padding = self._flat["action"].shape[1] == 7 and all(
            str(s.meta.get("source", "")).startswith("fmb") for s in stores
        )
        self.state_normalizer = MinMaxNormalizer.fit(self._flat["state"])
        self.action_normalizer = MinMaxNormalizer.fit(self._flat["action"])

    def __len__(self) -> int:
        return int(self.lengths.sum())

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-step feature shapes the networks are built for."""
        out = {"state": (self._flat["state"].shape[1],), "action": (self._flat["action"].shape[1],)}
        out["cond"] = (self._cond.shape[1],)
        if "points" in self._flat:
            out["points"] = (self.config.points, self._flat["points"].shape[-1])
        if "image" in self._flat:
            out["image"] = tuple(self._flat["image"].shape[1:])
        for conditioner in self.conditioners:
            out[conditioner.batch_key] = (self._flat[conditioner.batch_key].shape[1],)
        return out

    def _windows(
        self, episode: np.ndarray, t: np.ndarray, rng: np.random.Generator | None = None
    ) -> dict[str, np.ndarray]:
        c = self.config
        length = self.lengths[episode][:, None]
        start = self.starts[episode][:, None]
        obs_t = t[:, None] + np.arange(-c.obs_horizon + 1, 1)[None]  # (B, To)
        obs_idx = start + np.clip(obs_t, 0, None)
        act_t = t[:, None] + np.arange(-c.obs_horizon + 1, -c.obs_horizon + 1 + c.pred_horizon)[None]  # (B, Tp)
        act_idx = start + np.clip(act_t, 0, length - 1)
        actions = self._flat["action"][act_idx].copy()
        outside = (act_t < 0) | (act_t >= length)
        if self.zero_motion_padding:
            actions[..., :GRIPPER][outside] = 0.0  # zero motion; the gripper keeps the edge's command
        state = self._flat["state"][obs_idx]
        if rng is not None and any(self.goal_noise) and self._goal_columns is not None:
            state = self._noisy_goal(state, obs_idx, rng)
        batch = {
            "state": self.state_normalizer.normalize(state),
            "action": self.action_normalizer.normalize(actions),
            "cond": self._cond[episode],
        }
        if "points" in self._flat:
            k = c.points
            if rng is None:  # a fixed subset
                batch["points"] = self._flat["points"][obs_idx][:, :, :k]
            else:  # every window its own subset of the pooled points
                pick = rng.integers(0, POINT_POOL * k, (*obs_idx.shape, k))
                batch["points"] = self._flat["points"][obs_idx[..., None], pick]
        if "image" in self._flat:
            batch["image"] = self._flat["image"][obs_idx]
        for conditioner in self.conditioners:  # each input at the window's current step
            batch[conditioner.batch_key] = self._flat[conditioner.batch_key][start[:, 0] + t]
        return batch

    def _noisy_goal(self, state: np.ndarray, obs_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`state` (B, To, S) with its goal features recomputed from a goal pose perturbed once per
        window (the same perturbation over the window's steps: one perceived goal per skill)."""
        from scipy.spatial.transform import Rotation

        sigma_p, sigma_r = self.goal_noise
        goal = self._flat["goal_pose"][obs_idx[:, 0]].copy()  # (B, 7)
        goal[:, :3] += rng.normal(0.0, sigma_p, (len(goal), 3))
        turn = Rotation.from_rotvec(rng.normal(0.0, sigma_r, (len(goal), 3)))
        goal[:, 3:] = (turn * Rotation.from_quat(goal[:, 3:])).as_quat()
        state = state.copy()
        state[..., self._goal_columns] = goal_features(goal[:, None], self._flat["goal_tcp"][obs_idx])
        return state

    def window(self, episode: int, t: int) -> dict[str, np.ndarray]:
        """The window of step `t` of episode number `episode` (batch axis of 1)."""
        if not 0 <= t < self.lengths[episode]:
            raise ParameterError(f"step {t} is outside episode {episode} (length {self.lengths[episode]})")
        return self._windows(np.array([episode]), np.array([t]))

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A batch of windows drawn uniformly over all steps of all episodes."""
        flat = rng.integers(0, len(self), batch_size)
        episode = np.searchsorted(self.starts, flat, side="right") - 1
        return self._windows(episode, flat - self.starts[episode], rng)

    def save_summary(self) -> dict:
        return {"episodes": len(self.episodes), "steps": len(self), "families": sorted(set(self.families))}


def open_stores(paths: list[str | Path]) -> list:
    """EpisodeStore objects for `paths` (clear error for a path that is not a store)."""
    from sim.store import EpisodeStore

    return [EpisodeStore.open(p) for p in paths]
