"""The controller a skill node runs: a trained policy when a checkpoint is given, else the task's
scripted expert. Both have the runner interface `reset(env)` / `act(env) -> (7,) action` (see
`sim.rollout`), acted on a `fmb_ros.world.WorldMirror`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fmb.errors import ParameterError


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


def make_controller(
    skill: str, checkpoint: str = "", device: str = "auto", seed: int = 0, noise: float = 0.0, candidates: int = 1
) -> Controller:
    """Build the controller for `skill`.

    Args:
        skill: a task name of `sim.tasks.TASKS` (grasp, place_on_fixture, regrasp, rotate, insert, ...).
        checkpoint: policy run or checkpoint folder; "" = the scripted expert.
        device: "auto" (CUDA when present, else CPU), "cpu" or "cuda" (policies only).
        seed: seed of the expert's noise / the policy's sampling.
        noise: the expert's noise scale (0 = deterministic).
        candidates: action chunks a policy samples per decision (the first is executed until a
            preference scorer picks; all are drawn as markers).

    Raises:
        ParameterError: unknown skill, or a policy not trained for it.
        policies.checkpoint.CheckpointError: a missing or unreadable checkpoint.
    """
    from sim.tasks import TASKS

    if skill not in TASKS:
        raise ParameterError(f"unknown skill {skill!r}; known: {', '.join(skill_names())}")
    max_steps = TASKS[skill].max_steps
    if not checkpoint:
        from sim.experts import make_expert

        expert = make_expert(skill, noise=noise, seed=seed)
        return Controller(expert, f"scripted expert {type(expert).__name__} (noise {noise:g})", True, max_steps, "")
    from policies.policy import Policy
    from policies.runner import PolicyRunner

    policy = Policy.load(checkpoint, device, seed=seed)
    if policy.skills and skill not in policy.skills:
        raise ParameterError(f"checkpoint {checkpoint!r} was trained for {', '.join(policy.skills)}, not {skill!r}")
    recorder = CandidateRecorder(policy.config.obs_horizon - 1)
    runner = PolicyRunner(policy, num_samples=candidates, selector=recorder, skill=skill)
    runner.candidates = recorder
    runner.rng = np.random.default_rng(seed)
    return Controller(runner, f"policy {checkpoint} on {policy.device}", False, max_steps, policy.device)


class CandidateRecorder:
    """A PolicyRunner selector that keeps the sampled candidates for display and executes the first.

    `last` is (chunks (N, T, 7) from the current step on, TCP pose (7,) they start from, chosen index,
    scores or None), or None before the first decision with more than one candidate.
    """

    def __init__(self, first: int):
        self.first = first
        self.last = None

    def __call__(self, history, chunks) -> int:
        tcp = np.asarray(history[-1]["tcp_pose"], float)
        self.last = (np.asarray(chunks)[:, self.first :], tcp, 0, None)
        return 0
