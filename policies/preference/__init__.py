"""Preference-scored action selection (after DeformPAM): preference data from simulated outcomes
or people, implicit (diffusion-DPO) and explicit (Bradley-Terry) reward models, and a selector
that executes the best of N safe candidates.

    from policies.preference import CollectConfig, collect_preferences, train_reward
    from policies.runtime.runner import RunnerConfig, make_runner
    collect_preferences(PolicyRunSpec("runs/insert"), CollectConfig(states=40), "prefs/insert")
    train_reward("prefs/insert", Policy.load("runs/insert"), "rewards/implicit", RewardTrainConfig())
    runner = make_runner(policy, RunnerConfig(num_samples=16, select="implicit", reward="rewards/implicit"))

Exports load on first use (torch only when a reward model is built).
"""

from importlib import import_module

_EXPORTS = {
    "PreferenceSet": "policies.preference.data",
    "CollectConfig": "policies.preference.collect",
    "collect_preferences": "policies.preference.collect",
    "label_pairs": "policies.preference.collect",
    "RewardTrainConfig": "policies.preference.train",
    "train_reward": "policies.preference.train",
    "load_reward": "policies.preference.checkpoint",
    "CandidateFilter": "policies.preference.select",
    "CandidateSelector": "policies.preference.select",
    "make_selector": "policies.preference.select",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policies.preference' has no attribute {name!r}")
