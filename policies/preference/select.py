"""Preference-scored selection at run time: a `PolicyRunner` selector.

The runner draws N candidate chunks in one batch; the selector drops those that break the safety
limits, scores the rest with a reward model and returns the best. When no candidate is left it
returns the reference policy's first sample and logs that (`fallbacks` counts it).

Candidate filter (`CandidateFilter`), checked on the part of a chunk the runner may execute (from
index obs_horizon-1 to its end), with the limits the simulator and the safety filter apply
(`sim.limits`): every translation and rotation-vector delta within the per-component step limits
(the environment would clip larger ones, so a chunk that needs clipping is not what the policy
meant), and the open-loop TCP path (current TCP position plus the running sum of the deltas, base
frame) inside the workspace box shrunk by `margin` [m] (the environment would clip it into the box).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from fmb_core.errors import ParameterError, check_choice
from sim.limits import DEFAULT_ACTION_LIMITS, DEFAULT_WORKSPACE, ActionLimits, Workspace
from sim.observation import TCP_POSE

log = logging.getLogger(__name__)

SELECTIONS = ("none", "implicit", "explicit", "oracle")
"""How a candidate is picked: the first (none), by a learned reward (implicit, explicit), or by
trying each in the simulator (oracle: the bound of selection, `policies.preference.oracle`)."""


def tcp_paths(tcp_position: np.ndarray, chunks: np.ndarray, first: int = 0) -> np.ndarray:
    """(N, T+1, 3) open-loop TCP positions [m], base frame, of chunks (N, Tp, A) from index `first`,
    starting at `tcp_position` (3,) [m]."""
    steps = np.asarray(chunks)[:, first:, :3]
    start = np.broadcast_to(np.asarray(tcp_position, float)[:3], (len(steps), 1, 3))
    return np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)


@dataclasses.dataclass(frozen=True)
class CandidateFilter:
    """See module docstring.

    Attributes:
        actions: per-component step limits, or None to skip that check (benches whose untrained
            policies' chunks span metres).
        workspace: the TCP box [m], base frame.
        margin: how far inside the box the open-loop path must stay [m].
    """

    actions: ActionLimits | None = DEFAULT_ACTION_LIMITS
    workspace: Workspace = DEFAULT_WORKSPACE
    margin: float = 0.0

    def __post_init__(self):
        self.workspace.shrunk(self.margin)  # checks the margin and that a box is left

    def within(self, tcp_position: np.ndarray, chunks: np.ndarray, first: int = 0) -> np.ndarray:
        """(N,) bool: which chunks (N, Tp, A) keep every limit (see module docstring)."""
        chunks = np.asarray(chunks, float)
        part = chunks[:, first:]
        finite = np.all(np.isfinite(part), axis=(1, 2))
        steps_ok = (
            np.ones(len(chunks), bool)
            if self.actions is None
            else np.all(self.actions.delta_within(part[..., :6]), axis=1)
        )
        box = self.workspace.shrunk(self.margin)
        paths = tcp_paths(tcp_position, np.nan_to_num(chunks), first)
        inside = np.all((paths >= box.low) & (paths <= box.high), axis=(1, 2))
        return finite & steps_ok & inside


class CandidateSelector:
    """Picks the best safe candidate (the runner's `selector`).

    Args:
        reward: a RewardModel (`score(history, candidates, skill, family)`) or None to keep the
            first safe sample (selection "none" with safety filtering).
        limits: the candidate filter.
        first: chunk index of the current step (the policy's obs_horizon - 1).

    Attributes:
        decisions, fallbacks: counters; `last_scores` the rewards of the last decision (NaN = unsafe).
    """

    def __init__(self, reward=None, limits: CandidateFilter = CandidateFilter(), first: int = 1):
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
        safe = self.limits.within(history[-1][TCP_POSE][:3], candidates, self.first)
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
    checkpoint at `reward_path` (checked against the policy, `task` and the selection kind);
    `limits` are CandidateFilter fields."""
    from policies.preference.exceptions import RewardModelError

    check_choice("select", select, SELECTIONS)
    reward = None
    if select == "oracle":
        raise ParameterError(
            "--select oracle is not a reward: it tries every candidate in the simulator (fmb eval and the ablation "
            "build a policies.preference.oracle.OracleRunner; a robot has no simulator to try them in)"
        )
    if select != "none":
        if not reward_path:
            raise ParameterError(f"--select {select} needs --reward (a model from fmb prefs train)")
        from policies.preference.checkpoint import load_reward

        reward = load_reward(reward_path, policy, task)
        if reward.kind != select:
            raise RewardModelError(f"--reward {reward_path}: holds the {reward.kind} reward, but --select is {select}")
    return CandidateSelector(reward, CandidateFilter(**limits), first=policy.config.obs_horizon - 1)
