"""The controller a skill node runs: a trained policy when a checkpoint is given, else the task's
scripted expert. Both have the runner interface `reset(env)` / `act(env) -> (7,) action` (see
`sim.rollout`), acted on a `fmb_ros.world.WorldMirror`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fmb_core.errors import ParameterError, check_choice
from policies.runtime.runner import RunnerConfig
from sim.observation import TCP_POSE


class Controller(NamedTuple):
    """A ready controller.

    Attributes:
        runner: has reset(env) and act(env).
        description: one line for logs and status ("scripted expert ...", "policy ... on cpu").
        privileged: needs the simulator's ground truth (scripted experts do).
        max_steps: the skill's step limit at 10 Hz (the task's, as FMB).
        device: torch device the policy runs on ("" for experts).
    """

    runner: object
    description: str
    privileged: bool
    max_steps: int
    device: str


def skill_names() -> list[str]:
    from sim.tasks import TASKS

    return sorted(TASKS)


INFERENCE_MODES = ("async", "sync")


def make_controller(
    skill: str,
    *,
    checkpoint: str = "",
    device: str = "auto",
    seed: int = 0,
    noise: float = 0.0,
    runner_config: RunnerConfig = RunnerConfig(),
    inference: str = "sync",
    async_config=None,
) -> Controller:
    """Build the controller for `skill`.

    Args:
        skill: a task name of `sim.tasks.TASKS` (grasp, place_on_fixture, regrasp, rotate, insert, ...).
        checkpoint: policy run or checkpoint folder; "" = the scripted expert.
        device: "auto" (CUDA when present, else CPU), "cpu" or "cuda" (policies only).
        seed: seed of the expert's noise / the policy's sampling.
        noise: the expert's noise scale (0 = deterministic).
        runner_config: how a policy acts (policies.runtime.runner.RunnerConfig, as `fmb eval` takes it): the
            candidates it samples per decision (the first is executed unless a preference reward
            picks, `select`/`reward`; all are drawn as markers), action horizon, guidance, temperature.
        inference: "sync" (a policy decides inside `act`, as in simulation) or "async" (the next
            chunk is computed in a background thread; `act` returns None while it is late; see
            `policies.runtime.async_runner`).
        async_config: async: an `policies.runtime.async_runner.AsyncConfig` (lead, adaptive lead, period,
            inference thread priority); None = its defaults.

    Raises:
        ParameterError: unknown skill or selection, a policy not trained for it, a selection
            without a reward or with one candidate.
        policies.common.checkpoint.CheckpointError: a missing or unreadable checkpoint.
        policies.preference.exceptions.RewardModelError: a missing, unreadable or mismatched reward
            model (the message names its path).
    """
    from sim.tasks import TASKS

    check_choice("inference", inference, INFERENCE_MODES)
    if skill not in TASKS:
        raise ParameterError(f"unknown skill {skill!r}; known: {', '.join(skill_names())}")
    max_steps = TASKS[skill].max_steps
    if not checkpoint:
        from sim.experts import make_expert

        expert = make_expert(skill, noise=noise, seed=seed)
        return Controller(expert, f"scripted expert {type(expert).__name__} (noise {noise:g})", True, max_steps, "")
    from policies.runtime.policy import Policy
    from policies.runtime.runner import make_runner

    policy = Policy.load(checkpoint, device, seed=seed)
    if policy.skills and skill not in policy.skills:
        raise ParameterError(f"checkpoint {checkpoint!r} was trained for {', '.join(policy.skills)}, not {skill!r}")
    config = runner_config
    if config.select != "none" and not config.reward:
        raise ParameterError(f"select {config.select} needs the reward parameter (a model from fmb prefs train)")
    recorder = None

    def record(scorer):  # every candidate is drawn as a marker; the scorer (None: the first) picks
        nonlocal recorder
        recorder = CandidateRecorder(policy.config.obs_horizon - 1, scorer)
        return recorder

    runner = make_runner(policy, config, skill=skill, wrap=record)
    runner.candidates = recorder
    runner.rng = np.random.default_rng(seed)
    description = f"policy {checkpoint} on {policy.device}"
    if config.select != "none":
        description += f" ({config.select} preference selection of {config.num_samples}, reward {config.reward})"
    if inference == "async":
        from policies.runtime.async_runner import AsyncConfig, AsyncPolicyRunner

        a = async_config or AsyncConfig()
        runner = AsyncPolicyRunner(
            runner, lead=a.lead, adaptive=a.adaptive, period=a.period, nice=a.nice, realtime=a.realtime
        )
        adaptive = ", adaptive" if a.adaptive else ""
        description += f" (async, lead {a.lead}{adaptive}; inference thread: {runner.priority})"
    return Controller(runner, description, False, max_steps, policy.device)


class CandidateRecorder:
    """A PolicyRunner selector that keeps the sampled candidates for display. It executes the first,
    or what `scorer` picks (a `policies.preference.select.CandidateSelector`, whose `last_scores`
    are kept: NaN for an unsafe candidate).

    `last` is (chunks (N, T, 7) from the current step on, TCP pose (7,) they start from, chosen index,
    scores (N,) or None), or None before the first decision with more than one candidate.
    """

    def __init__(self, first: int, scorer=None):
        self.first = first
        self.scorer = scorer
        self.last = None

    def reset(self, runner) -> None:
        """PolicyRunner.reset calls it: the scorer takes the runner's skill and object family."""
        self.last = None
        if self.scorer is not None:
            self.scorer.reset(runner)

    def __call__(self, history, chunks) -> int:
        tcp = np.asarray(history[-1][TCP_POSE], float)
        chosen, scores = 0, None
        if self.scorer is not None:
            chosen = int(self.scorer(history, chunks))
            scores = np.asarray(self.scorer.last_scores, float).copy()
        self.last = (np.asarray(chunks)[:, self.first :], tcp, chosen, scores)
        return chosen
