"""Preference-scored selection at run time: a `PolicyRunner` selector.

The runner draws N candidate chunks in one batch; the selector drops those that break the safety
limits, scores the rest with a reward model and returns the best. When no candidate is left it
returns the reference policy's first sample and logs that (`fallbacks` counts it).

Safety limits, checked on the part of a chunk the runner may execute (from index obs_horizon-1 to
its end): every translation delta within +-`max_translation` [m] and every rotation-vector delta
within +-`max_rotation` [rad] per component (FMB's per-step limits; the environment would clip
larger ones, so a chunk that needs clipping is not what the policy meant), and the open-loop TCP
path (current TCP position plus the running sum of the deltas, base frame) inside the workspace
box shrunk by `margin` [m].
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from fmb.errors import ParameterError, check_choice, check_range
from sim.env import WORKSPACE_HIGH, WORKSPACE_LOW

log = logging.getLogger(__name__)

SELECTIONS = ("none", "implicit", "explicit")


@dataclasses.dataclass(frozen=True)
class SafetyLimits:
    """See module docstring. Defaults: FMB's action limits and the environment's TCP box."""

    workspace_low: tuple[float, float, float] = tuple(WORKSPACE_LOW)
    workspace_high: tuple[float, float, float] = tuple(WORKSPACE_HIGH)
    margin: float = 0.0
    max_translation: float = 0.06
    max_rotation: float = 0.25

    def __post_init__(self):
        check_range("margin", self.margin, 0.0, 0.2)
        check_range("max_translation", self.max_translation, 0.0, 10.0)
        check_range("max_rotation", self.max_rotation, 0.0, np.pi)
        if any(lo + 2 * self.margin >= hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
            raise ParameterError(f"workspace box {self.workspace_low}..{self.workspace_high} is empty after the margin")

    def tcp_paths(self, tcp_position: np.ndarray, chunks: np.ndarray, first: int = 0) -> np.ndarray:
        """(N, T+1, 3) open-loop TCP positions [m] of chunks (N, Tp, A) from index `first`."""
        steps = np.asarray(chunks)[:, first:, :3]
        start = np.broadcast_to(np.asarray(tcp_position, float)[:3], (len(steps), 1, 3))
        return np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)

    def within(self, tcp_position: np.ndarray, chunks: np.ndarray, first: int = 0) -> np.ndarray:
        """(N,) bool: which chunks keep every limit (see module docstring)."""
        chunks = np.asarray(chunks, float)
        part = chunks[:, first:]
        finite = np.all(np.isfinite(part), axis=(1, 2))
        steps_ok = np.all(np.abs(part[..., :3]) <= self.max_translation + 1e-9, axis=(1, 2)) & np.all(
            np.abs(part[..., 3:6]) <= self.max_rotation + 1e-9, axis=(1, 2)
        )
        paths = self.tcp_paths(tcp_position, np.nan_to_num(chunks), first)
        low = np.asarray(self.workspace_low) + self.margin
        high = np.asarray(self.workspace_high) - self.margin
        inside = np.all((paths >= low) & (paths <= high), axis=(1, 2))
        return finite & steps_ok & inside


class CandidateSelector:
    """Picks the best safe candidate (the runner's `selector`).

    Args:
        reward: a RewardModel (`score(history, candidates, skill, family)`) or None to keep the
            first safe sample (selection "none" with safety filtering).
        limits: safety limits.
        first: chunk index of the current step (the policy's obs_horizon - 1).

    Attributes:
        decisions, fallbacks: counters; `last_scores` the rewards of the last decision (NaN = unsafe).
    """

    def __init__(self, reward=None, limits: SafetyLimits = SafetyLimits(), first: int = 1):
        self.reward = reward
        self.limits = limits
        self.first = int(first)
        self.skill = ""
        self.family = ""
        self.decisions = 0
        self.fallbacks = 0
        self.last_scores: np.ndarray | None = None

    def reset(self, runner) -> None:
        """Called by PolicyRunner.reset: take the runner's skill and object family."""
        self.skill, self.family = runner.skill, runner.family

    def __call__(self, history: list[dict], candidates: np.ndarray) -> int:
        self.decisions += 1
        safe = self.limits.within(history[-1]["tcp_pose"][:3], candidates, self.first)
        if not safe.any():
            self.fallbacks += 1
            self.last_scores = np.full(len(candidates), np.nan)
            log.warning(
                "no candidate of %d within the safety limits; executing the reference policy's first sample "
                "(fallback %d of %d decisions)",
                len(candidates),
                self.fallbacks,
                self.decisions,
            )
            return 0
        idx = np.flatnonzero(safe)
        scores = np.full(len(candidates), np.nan)
        if self.reward is None:
            scores[idx] = 0.0
            self.last_scores = scores
            return int(idx[0])
        scores[idx] = self.reward.score(history, candidates[idx], self.skill, self.family)
        self.last_scores = scores
        return int(idx[np.argmax(scores[idx])])


def make_selector(policy, select: str = "none", reward_path: str = "", task: str | None = None, **limits):
    """A CandidateSelector for `policy`: `select` none | implicit | explicit, with the reward
    checkpoint at `reward_path` (checked against the policy, `task` and the selection kind)."""
    from policies.preference.exceptions import RewardModelError

    check_choice("--select", select, SELECTIONS)
    reward = None
    if select != "none":
        if not reward_path:
            raise ParameterError(f"--select {select} needs --reward (a model from fmb prefs train)")
        from policies.preference.checkpoint import load_reward

        reward = load_reward(reward_path, policy, task)
        if reward.kind != select:
            raise RewardModelError(f"--reward {reward_path}: holds the {reward.kind} reward, but --select is {select}")
    return CandidateSelector(reward, SafetyLimits(**limits), first=policy.config.obs_horizon - 1)
