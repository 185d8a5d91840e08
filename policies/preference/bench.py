"""Latency of preference-scored selection: N candidates sampled in one batch, then scored by the
implicit reward (fine-tuned copy and frozen reference, `noise_draws` draws each) or the explicit
head, the safety filter included. Untrained weights time the same as trained ones."""

from __future__ import annotations

import numpy as np


def time_selection(
    policy,
    kind: str = "implicit",
    num_samples: int = 16,
    noise_draws: int = 4,
    repeats: int = 20,
    finetune: str = "all",
):
    """Median seconds of one selecting decision: `policy.predict` of `num_samples` candidates +
    the selector (safety filter + `kind` reward; implicit: `finetune` all or head) on a
    synthetic insertion observation."""
    from policies.experiments.timing import median_seconds, synthetic_observation
    from policies.preference.checkpoint import RewardModel, build_net
    from policies.preference.select import CandidateFilter, CandidateSelector
    from sim.limits import Workspace

    settings = {"beta": 1000.0, "max_timestep": 10, "noise_draws": noise_draws, "hidden": [256, 256]}
    settings["finetune"] = finetune
    reward = RewardModel(build_net(kind, policy, settings), policy, {})
    # The bench policy's untrained chunks span its [-1, 1] normaliser (metres): no step check and a
    # wide box keep every candidate, so that all of them are scored (the filter's cost is about the same).
    wide = CandidateFilter(actions=None, workspace=Workspace((-10.0, -10.0, -10.0), (10.0, 10.0, 10.0)))
    selector = CandidateSelector(reward, wide, first=policy.config.obs_horizon - 1)
    rng = np.random.default_rng(0)
    history = [synthetic_observation(rng), synthetic_observation(rng)]

    def decide(i: int) -> None:
        selector(history, policy.predict(history, num_samples, seed=i))
        assert not selector.fallbacks, "every candidate must be scored for a fair timing"

    return median_seconds(decide, policy.device, repeats)
