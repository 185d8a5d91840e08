"""Preference states from recorded episodes (`fmb prefs from-episodes`): what a lab without a
simulator of its scene ranks by hand.

A robot cannot restore a state and roll out several candidates from it, so nothing here is
labelled by outcome: each state is an observation history taken from an episode store (recorded
by `fmb_recorder`, imported from a rosbag, FMB's release or LeRobot, or collected in simulation)
with K candidate chunks the policy proposes for it. `fmb prefs label` then shows each state's
cloud and candidates to a person, whose rankings train a reward (`fmb prefs train`) like
simulated labels do.

States are taken every `stride` steps of each episode (the first at step `stride` - 1, so that
a full observation history exists), interleaved over episodes (every episode's first state, then
every episode's second, ...) until `states` are taken. Goal-conditioned policies get the goal
the episode's meta records for their skill (`targets`, as in training); a conditioner's inputs
(GravMap's sub-goal) are computed from the episode as in training.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError, check_range
from policies.common.features import GOAL_POSE
from policies.preference.data import PreferenceSet
from sim.observation import STORE_PREFIX


@dataclasses.dataclass(frozen=True)
class RecordedStatesConfig:
    """Attributes:
    states: states to take (fewer when the episodes hold fewer).
    candidates: K, chunks the policy proposes per state (>= 2).
    stride: steps between two states of one episode (>= 1).
    temperature: initial-noise scale of the candidates (above 1 spreads them).
    seed: seed of the candidates' sampling (state i draws with seed + i).
    """

    states: int = 40
    candidates: int = 4
    stride: int = 10
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self):
        check_range("states", self.states, 1, 1_000_000)
        check_range("candidates", self.candidates, 2, 64)
        check_range("stride", self.stride, 1, 100_000)
        check_range("temperature", self.temperature, 0.0, 10.0)


def state_points(lengths: list[int], config: RecordedStatesConfig) -> list[tuple[int, int]]:
    """(episode position, step) of the states to take from episodes of these lengths, interleaved
    over episodes (module docstring), at most `config.states`."""
    per_episode = [list(range(config.stride - 1, n, config.stride)) for n in lengths]
    picked = []
    for rank in range(max((len(s) for s in per_episode), default=0)):
        picked += [(e, steps[rank]) for e, steps in enumerate(per_episode) if rank < len(steps)]
    return picked[: config.states]


def states_from_episodes(
    store_root: str | Path, policy_path: str | Path, out: str | Path, config: RecordedStatesConfig, progress=True
) -> dict:
    """Write a preference folder `out` of unlabelled states from the episodes of `store_root`,
    with candidates from the policy at `policy_path`; returns a summary.

    Raises:
        ParameterError: the store holds no episode long enough for one state, the policy needs a
            goal the episodes do not record, or the store lacks an observation the policy reads.
        PreferenceDataError: `out` already holds a preference set.
    """
    from tqdm import tqdm

    from policies.common import checkpoint
    from policies.config import goal_key
    from policies.runtime.policy import Policy
    from sim.store import EpisodeStore

    store = EpisodeStore.open(store_root)
    policy = Policy.load(policy_path, "cpu")
    task = store.meta.get("task", "")
    if policy.skills and task not in policy.skills:
        raise ParameterError(
            f"{store.root} holds {task!r} episodes; the policy {policy_path} runs {', '.join(policy.skills)}"
        )
    indices = store.episode_indices()
    points = state_points([store.load_meta(i)["num_steps"] for i in indices], config)
    if not points:
        raise ParameterError(
            f"{store.root}: no episode has {config.stride} steps, the first state's step (--stride {config.stride})"
        )
    target = goal_key(policy.config, task) if policy.config.goal else ""
    pset = PreferenceSet.create(
        out,
        {
            "task": task,
            "policy": str(checkpoint.resolve(policy_path)),
            "observation": policy.meta.get("observation", {}),
            "policy_config": policy.config.to_dict(),
            "source": "recorded",
            "collect": dataclasses.asdict(config) | {"store": str(store.root.absolute())},
        },
    )
    to = policy.config.obs_horizon
    # Each episode is loaded once (states are made episode by episode) and the states are stored
    # in the interleaved order of `points`; state n draws its candidates with seed + n.
    made: dict[int, tuple[list[dict], np.ndarray]] = {}
    bar = tqdm(total=len(points), desc="prefs from episodes", unit="state", disable=not progress)
    for position in sorted({p for p, _ in points}):
        obs, meta = _episode_observations(store, indices[position], policy, target)
        for n, (_, step) in ((n, p) for n, p in enumerate(points) if p[0] == position):
            history = [{k: v[t] for k, v in obs.items()} for t in range(max(0, step - to + 1), step + 1)]
            candidates = policy.predict(
                history,
                config.candidates,
                seed=config.seed + n,
                skill=task,
                family=meta.get("family", ""),
                temperature=config.temperature,
            )
            made[n] = (history, candidates)
            bar.update(1)
    bar.close()
    for n, (position, step) in enumerate(points):
        history, candidates = made[n]
        pset.add_state(
            history=history,
            candidates=candidates,
            episode_index=int(indices[position]),
            step=int(step),
            source="recorded",
        )
    return {
        "out": str(Path(out).absolute()),
        "states": len(pset),
        "episodes": len({p for p, _ in points}),
        "candidates": config.candidates,
        "next": f"fmb prefs label {out}",
    }


def _episode_observations(store, index: int, policy, target: str) -> tuple[dict, dict]:
    """({observation key: (T, ...)} as the policy reads them at run time, the episode's meta)."""
    from policies.common.dataset import stored_inputs

    meta = store.load_meta(index)
    data = store.load(index).data
    missing = [k for k in stored_inputs(policy.config) if k not in data]
    if missing:
        raise ParameterError(f"{store.root} episode {index}: the policy reads {', '.join(missing)}, which it lacks")
    obs = {
        k.removeprefix(STORE_PREFIX): v
        for k, v in data.items()
        if k.startswith(STORE_PREFIX) and not k.startswith(STORE_PREFIX + "depth/")
    }
    steps = meta["num_steps"]
    if target:
        targets = meta.get("targets", {})
        if target not in targets:
            raise ParameterError(
                f"{store.root} episode {index}: the policy is conditioned on the goal {target!r}, which the episode "
                f"does not record (targets: {', '.join(targets) or 'none'}); take a policy trained with --goal ''"
            )
        obs[GOAL_POSE] = np.broadcast_to(np.asarray(targets[target], np.float64), (steps, 7))
    for conditioner in policy.conditioners:  # e.g. GravMap's sub-goal, as training computes it
        obs[conditioner.batch_key] = conditioner.episode_inputs(store, index, data)
    return obs, meta
