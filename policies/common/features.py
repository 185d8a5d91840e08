"""From raw observations to model inputs (numpy only): state vectors, local point clouds, one-hots,
and the min-max normaliser. The same code prepares training windows and live observations, so a
policy sees exactly what it was trained on.

Shapes: T steps, N cloud points, K local points, S state width, A = 7 action width.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError
from policies.config import PolicyConfig
from sim.observation import DQ, GRIPPER, POINTS, TCP_POSE, TCP_VEL, WRENCH, Q

STATE_WIDTHS = {TCP_POSE: 9, TCP_VEL: 6, WRENCH: 6, Q: 7, DQ: 7, GRIPPER: 1, "goal": 9}
"""Width of each state part after conversion (tcp_pose: position + 6-D rotation; goal: offset +
6-D rotation relative to the TCP)."""
GOAL_POSE = "goal_pose"
"""Observation key of the skill's target pose (7,) [m, xyzw] in the base frame (see PolicyConfig.goal)."""


def goal_features(goal_pose: np.ndarray, tcp_pose: np.ndarray) -> np.ndarray:
    """(..., 9): goal position minus TCP position [m] (base-frame axes, like the actions) and the
    6-D form of the goal's rotation seen from the TCP (R_tcp^T R_goal)."""
    g, t = np.asarray(goal_pose, np.float64), np.asarray(tcp_pose, np.float64)
    g, t = np.broadcast_arrays(g, t)
    r_tcp = Rotation.from_quat(t[..., 3:7].reshape(-1, 4))
    r_goal = Rotation.from_quat(g[..., 3:7].reshape(-1, 4))
    rel = (r_tcp.inv() * r_goal).as_matrix()[:, :, :2].transpose(0, 2, 1).reshape(*t.shape[:-1], 6)
    return np.concatenate([g[..., :3] - t[..., :3], rel], axis=-1)


def rot6d(quat: np.ndarray) -> np.ndarray:
    """(..., 6) first two columns of the rotation matrix of quaternions (..., 4) xyzw: continuous
    and free of the q / -q ambiguity (Zhou et al. 2019)."""
    q = np.asarray(quat, dtype=np.float64)
    m = Rotation.from_quat(q.reshape(-1, 4)).as_matrix()  # (M, 3, 3)
    return m[:, :, :2].transpose(0, 2, 1).reshape(*q.shape[:-1], 6)


def state_vector(obs: dict[str, np.ndarray], keys: tuple[str, ...]) -> np.ndarray:
    """(..., S) float32 concatenation of the observation parts `keys` (leading axes kept).

    Raises ParameterError naming a missing key and the keys that exist.
    """
    parts = []
    for key in keys:
        if key == "goal":
            if GOAL_POSE not in obs or TCP_POSE not in obs:
                raise ParameterError(f"the policy is goal-conditioned but the observation has no {GOAL_POSE!r}")
            parts.append(goal_features(obs[GOAL_POSE], obs[TCP_POSE]))
            continue
        if key not in obs:
            raise ParameterError(f"observation has no {key!r}; it has: {', '.join(sorted(obs))}")
        x = np.asarray(obs[key], dtype=np.float64)
        if key == TCP_POSE:
            x = np.concatenate([x[..., :3], rot6d(x[..., 3:7])], axis=-1)
        parts.append(x)
    return np.concatenate(parts, axis=-1).astype(np.float32)


def local_points(
    points: np.ndarray, tcp_position: np.ndarray, config: PolicyConfig, rng: np.random.Generator
) -> np.ndarray:
    """(K, 6) float32 cloud around the TCP, every channel in [-1, 1].

    Args:
        points: (N, 6) xyz [m] in the base frame + rgb in [0, 1].
        tcp_position: (3,) [m], base frame.
        config: `points` (K) and the crop box `crop_low`/`crop_high` relative to the TCP [m].
        rng: draws which points are kept (with replacement when fewer than K lie in the box).

    xyz becomes the offset from the TCP (base-frame axes, so that it matches the actions'
    frame) scaled so that the crop box maps to [-1, 1]; rgb maps to [-1, 1]. An empty crop
    gives zeros.
    """
    low, high = np.asarray(config.crop_low), np.asarray(config.crop_high)
    rel = points[:, :3] - tcp_position
    inside = np.all((rel >= low) & (rel <= high), axis=1)
    rel, rgb = rel[inside], points[inside, 3:6]
    k = config.points
    if len(rel) == 0:
        return np.zeros((k, 6), np.float32)
    idx = rng.choice(len(rel), k, replace=len(rel) < k)
    xyz = 2.0 * (rel[idx] - low) / (high - low) - 1.0
    return np.concatenate([xyz, 2.0 * rgb[idx] - 1.0], axis=1).astype(np.float32)


def one_hot(value: str, names: tuple[str, ...]) -> np.ndarray:
    """(len(names),) float32 one-hot of `value`; all zeros for a name not in `names` (held-out)."""
    v = np.zeros(len(names), np.float32)
    if value in names:
        v[names.index(value)] = 1.0
    return v


def condition_vector(config: PolicyConfig, skill: str, family: str) -> np.ndarray:
    """(C,) skill one-hot (when the policy knows several skills) + object family one-hot."""
    parts = []
    if len(config.skills) > 1:
        parts.append(one_hot(skill, config.skills))
    if config.families:
        parts.append(one_hot(family, config.families))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def episode_features(obs: dict[str, np.ndarray], config: PolicyConfig, rng: np.random.Generator) -> dict:
    """Per-step model inputs of a sequence of T observations (each value (T, ...)).

    Returns {"state": (T, S) float32 (not normalised), "points": (T, K, 6) float32 (when the
    policy uses points), "image": (T, H, W, 3) uint8 (when it uses an image)}.
    """
    out = {"state": state_vector(obs, config.state_keys)}
    if config.points:
        if POINTS not in obs:
            raise ParameterError("the policy needs point clouds ('points') but the observations have none")
        tcp = np.asarray(obs[TCP_POSE])[..., :3]
        out["points"] = np.stack([local_points(p, c, config, rng) for p, c in zip(obs[POINTS], tcp)])
    if config.image_key:
        if config.image_key not in obs:
            raise ParameterError(f"the policy needs {config.image_key!r} but the observations have none")
        out["image"] = np.asarray(obs[config.image_key], dtype=np.uint8)
    return out


class MinMaxNormalizer:
    """Maps each dimension from its data range [min, max] to [-1, 1] and back.

    Dimensions that never vary map to 0 (and back to their constant value).
    """

    def __init__(self, low: np.ndarray, high: np.ndarray):
        self.low = np.asarray(low, np.float32)
        self.high = np.asarray(high, np.float32)
        if self.low.shape != self.high.shape or self.low.ndim != 1:
            raise ParameterError(
                f"normaliser bounds must be two equal 1-D arrays, got {self.low.shape}, {self.high.shape}"
            )
        span = self.high - self.low
        self._scale = np.where(span > 1e-6, 2.0 / np.maximum(span, 1e-6), 0.0).astype(np.float32)
        self._centre = ((self.high + self.low) / 2).astype(np.float32)

    @classmethod
    def fit(cls, data: np.ndarray) -> MinMaxNormalizer:
        """Bounds from (M, D) samples."""
        data = np.asarray(data, np.float32).reshape(-1, np.shape(data)[-1])
        return cls(data.min(axis=0), data.max(axis=0))

    @property
    def dim(self) -> int:
        return len(self.low)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - self._centre) * self._scale).astype(np.float32)

    def unnormalize(self, y: np.ndarray) -> np.ndarray:
        span = self.high - self.low
        return (np.asarray(y, np.float32) * span / 2 * (self._scale > 0) + self._centre).astype(np.float32)

    def to_dict(self) -> dict:
        return {"low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> MinMaxNormalizer:
        return cls(np.asarray(d["low"]), np.asarray(d["high"]))
