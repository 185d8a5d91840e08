"""Preference data from simulation, automatically (after DeformPAM).

The reference policy runs seeded episodes. At some of its decision points the whole environment
is saved (`FmbEnv.snapshot`), K candidate chunks are drawn in one batch, and each candidate is
rolled out from that same state: its first `action_horizon` actions, then the reference policy
for `continue_steps` more steps (the same sampling seed for every candidate, so that only the
candidate differs). Candidates are ranked by outcome, best first:

    1. success during the rollout, 2. not failed (peg kept in the hand), 3. the task's dense
    progress at the end (`info["progress"]`, e.g. insertion depth and lateral alignment).

Pairs whose progress differs by less than `tie_tolerance` (and agree on 1 and 2) are ties; a pair
with a rollout whose physics blew up is invalid. The episode then goes on with the reference
policy's own action, from the restored state.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque
from pathlib import Path

import numpy as np

from fmb_core.errors import check_range
from policies.common.features import GOAL_POSE
from policies.gravmap.conditioner import SUBGOAL
from policies.preference.data import PreferenceSet
from sim.exceptions import EpisodeAborted, PerceptionError
from sim.observation import TCP_POSE


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """Settings of automatic preference collection.

    Args:
        states: states to collect.
        candidates: K, chunks sampled and rolled out per state.
        continue_steps: reference-policy steps after the candidate's chunk [10 Hz steps].
        decision_stride: take a state at every `decision_stride`-th decision of an episode.
        states_per_episode: at most this many states from one episode (spreads them over episodes).
        tie_tolerance: progress difference below which two outcomes tie.
        temperature: scale of the initial noise the candidates are drawn with (above 1 spreads
            them: a well-trained policy's candidates at 1 mostly lead to the same outcome, and
            tied pairs teach a reward nothing).
        seed: first episode seed (episode i uses seed + i; apart from demonstration seeds 0 ..).
    """

    states: int = 40
    candidates: int = 8
    continue_steps: int = 16
    decision_stride: int = 2
    states_per_episode: int = 4
    tie_tolerance: float = 0.01
    temperature: float = 1.0
    seed: int = 200_000

    def __post_init__(self):
        check_range("states", self.states, 1, 1_000_000)
        check_range("candidates", self.candidates, 2, 1024)
        check_range("continue_steps", self.continue_steps, 0, 1000)
        check_range("decision_stride", self.decision_stride, 1, 1000)
        check_range("states_per_episode", self.states_per_episode, 1, 1000)
        check_range("tie_tolerance", self.tie_tolerance, 0.0, 1.0)
        check_range("temperature", self.temperature, 0.0, 10.0)


def outcome_key(outcome: dict) -> tuple:
    """Sort key of a rollout outcome, larger is better (see module docstring)."""
    return (bool(outcome["success"]), not outcome["failed"], float(outcome["progress"]))


def label_pairs(outcomes: list[dict], tie_tolerance: float = 0.01) -> list[list]:
    """[i, j, label] for every pair i < j of rollout `outcomes` (dicts with success, failed,
    progress, unstable); labels as in `policies.preference.data`."""
    pairs = []
    for i in range(len(outcomes)):
        for j in range(i + 1, len(outcomes)):
            a, b = outcomes[i], outcomes[j]
            if a.get("unstable") or b.get("unstable"):
                label = "invalid"
            else:
                ka, kb = outcome_key(a), outcome_key(b)
                if ka[:2] == kb[:2] and abs(ka[2] - kb[2]) < tie_tolerance:
                    label = "tie"
                else:
                    label = "first" if ka > kb else "second"
            pairs.append([i, j, label])
    return pairs


def _fork(runner, queue: np.ndarray, seed: int):
    """A copy of `runner` (sharing its policy) whose next actions are `queue`, then its own plans."""
    from policies.runtime.runner import PolicyRunner, RunnerConfig

    # one plain sample per decision, as the runner plans its own continuation
    config = RunnerConfig(
        action_horizon=runner.action_horizon, guidance=runner.guidance, temperature=runner.temperature
    )
    r = PolicyRunner(runner.policy, config, skill=runner.skill)
    r.history = deque(runner.history, maxlen=runner.history.maxlen)
    r.queue = deque(queue)
    r.t, r.family, r.goal_pose = runner.t, runner.family, runner.goal_pose
    r.subgoals = copy.deepcopy(getattr(runner, "subgoals", None))  # GravMap sub-goals advance per fork
    r.rng = np.random.default_rng(seed)
    return r


def rollout_candidate(env, runner, snap, chunk: np.ndarray, steps: int, seed: int) -> tuple[dict, np.ndarray]:
    """Restore `snap`, execute the chunk's next `action_horizon` actions, then the reference
    policy, for `steps` steps in all (fewer when the episode ends).

    Returns (outcome dict, (steps+1, 3) TCP positions [m] with NaN after the end)."""
    from sim.exceptions import SimError

    env.restore(snap)
    first = runner.policy.config.obs_horizon - 1
    fork = _fork(runner, chunk[first : first + runner.action_horizon], seed)
    path = np.full((steps + 1, 3), np.nan, np.float32)
    path[0] = env.last_observation[TCP_POSE][:3]
    info = {"success": False, "failed": False, "progress": 0.0}
    unstable = ""
    for t in range(steps):
        try:
            _, _, terminated, truncated, info = env.step(fork.act(env))
        except SimError as e:
            unstable = str(e)
            break
        path[t + 1] = env.last_observation[TCP_POSE][:3]
        if terminated or truncated:
            break
    outcome = {
        "success": bool(info["success"]),
        "failed": bool(info["failed"]),
        "progress": float(info["progress"]),
        "unstable": unstable,
    }
    return outcome, path


def _stored_observation(obs: dict) -> dict:
    """What a state keeps of an observation: everything but depth images (the cloud has them)."""
    return {k: v for k, v in obs.items() if not k.startswith("depth/")}


def collect_preferences(
    spec, config: CollectConfig, out: Path, progress: bool = True, threads: int = 0, executor=None
) -> dict:
    """Collect `config.states` labelled states with the policy and environment of `spec` (a
    `PolicyRunSpec`) into a new preference folder `out`; returns a summary.

    Episodes run on `executor` (`sim.parallel`: local worker processes or Ray actors; default one
    process, this one), each worker with the rollout thread budget (`fmb_core.threads`; `threads`
    > 0 overrides it). Episode i has seed `config.seed + i` and yields the same states wherever it
    runs; they are stored in episode order as soon as every earlier episode is in, so the folder
    is the same as a serial run's. Episodes are handed out in waves of the number still needed."""
    from tqdm import tqdm

    from policies.common import checkpoint
    from sim import parallel
    from sim.collect import rollout_budget

    executor = executor or parallel.Executor("local", 1)
    budget = rollout_budget(executor.workers, threads)
    from policies.runtime.policy import Policy

    policy = Policy.load(spec.policy, "cpu")  # the header's facts; the workers load their own
    meta = policy.meta
    task = spec.task or (policy.skills[0] if policy.skills else "")
    pset = PreferenceSet.create(
        out,
        {
            "task": task,
            "policy": str(checkpoint.resolve(spec.policy)),
            "observation": meta.get("observation", {}),
            "policy_config": policy.config.to_dict(),
            "source": "sim",
            "collect": dataclasses.asdict(config)
            | {"backend": spec.backend, "split": spec.split, "side": spec.side, "goals": spec.goals},
        },
    )
    work_spec = spec.portable() if executor.kind == "ray" and hasattr(spec, "portable") else spec
    bar = tqdm(total=config.states, desc=f"prefs {pset.task}", unit="state", disable=not progress)
    perception_failures: list[str] = []
    episodes = 0  # handed out so far: seeds config.seed .. config.seed + episodes - 1
    stored = 0  # episodes whose states are in the folder (in seed order)
    waiting: dict[int, tuple] = {}
    while len(pset) < config.states:
        if len(perception_failures) > 10 + 2 * config.states:  # not a scene problem: say so, do not loop
            raise PerceptionError(
                f"perception failed in {len(perception_failures)} of {stored} episodes; last: {perception_failures[-1]}"
            )
        need = -(-(config.states - len(pset)) // config.states_per_episode)
        wave = list(range(config.seed + episodes, config.seed + episodes + max(need, executor.workers)))
        episodes += len(wave)
        jobs = parallel.imap(_init_worker, (work_spec, config, budget), _run_episode, wave, executor, budget.threads)
        for seed, states, failure in jobs:
            waiting[seed] = (states, failure)
            while config.seed + stored in waiting and len(pset) < config.states:
                states, failure = waiting.pop(config.seed + stored)
                stored += 1
                if failure:
                    perception_failures.append(failure)
                for state in states[: config.states - len(pset)]:
                    pset.add_state(**state)
                    bar.update(1)
    bar.close()
    return {
        "out": str(Path(out).absolute()),
        "states": len(pset),
        "episodes": stored,
        "labels": pset.label_counts(),
        "goals": "truth (upper bound)" if spec.goals == "truth" else "perceived",
        "perception_failures": perception_failures,
        "threads": budget.to_dict(),
        "executor": executor.to_dict(),
    }


_WORKER: dict = {}


def _init_worker(spec, config: CollectConfig, budget) -> None:
    from fmb_core import threads as thread_budget

    thread_budget.apply_threads(budget)  # before build(): torch starts with it
    _WORKER["env"], _WORKER["runner"] = spec.build()
    _WORKER["config"] = config


def _run_episode(seed: int) -> tuple[int, list[dict], str]:
    """(seed, the states its episode yields (`PreferenceSet.add_state` arguments, in order), the
    perception failure that ended it at its start or "")."""
    env, runner, config = _WORKER["env"], _WORKER["runner"], _WORKER["config"]
    horizon = runner.action_horizon + config.continue_steps
    command = getattr(runner, "command", None)  # --goals perceived: the safety filter's target
    env.reset(seed=seed)
    runner.rng = np.random.default_rng(seed)
    try:
        runner.reset(env)
    except EpisodeAborted as e:  # --goals perceived: the goal's object was not found; next episode
        return seed, [], f"seed {seed}: {e}"
    runner.rng = np.random.default_rng(seed)
    states: list[dict] = []
    decisions, done = 0, False
    while not done and len(states) < config.states_per_episode:
        if not runner.queue:  # a decision point
            if decisions % config.decision_stride == config.decision_stride - 1:
                states.append(_collect_state(env, runner, config, horizon, seed))
            decisions += 1
        action = runner.act(env)
        step = env.step(action) if command is None else env.step_pose(*command(env, action))
        done = step[2] or step[3]
    return seed, states, ""


def _collect_state(env, runner, config: CollectConfig, horizon: int, seed: int) -> dict:
    """One state of the episode: the candidates drawn here, each rolled out from it, labelled;
    the `PreferenceSet.add_state` arguments. The episode goes on from the restored state."""
    obs = env.last_observation
    if runner.goal_pose is not None:
        obs = {**obs, GOAL_POSE: runner.goal_pose}
    if getattr(runner, "subgoals", None) is not None:  # what the runner's next act would add
        obs = {**obs, SUBGOAL: copy.deepcopy(runner.subgoals).update(obs[TCP_POSE]).vector()}
    history = [*list(runner.history)[1 - runner.history.maxlen :], obs] if runner.history.maxlen > 1 else [obs]
    draw = int(runner.rng.integers(2**31))
    candidates = runner.sample(history, draw, config.candidates, config.temperature)
    snap = env.snapshot()
    results = [rollout_candidate(env, runner, snap, c, horizon, draw) for c in candidates]
    env.restore(snap)
    outcomes = [r[0] for r in results]
    return {
        "history": [_stored_observation(h) for h in history],
        "candidates": candidates,
        "paths": np.stack([r[1] for r in results]),
        "outcomes": outcomes,
        "pairs": label_pairs(outcomes, config.tie_tolerance),
        "source": "sim",
        "episode_seed": int(seed),
        "step": int(env.steps),
    }
