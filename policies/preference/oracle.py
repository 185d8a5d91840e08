"""The oracle bound of candidate selection: what any reward could gain at most.

At every decision the policy draws its N candidates as for selection; the oracle rolls each out in
the simulator from a snapshot of this very state (the candidate's first `action_horizon` actions,
then the plain policy for `continue_steps` steps in all, `policies.preference.collect.rollout_candidate`,
the rollouts preference collection labels with), restores the state and executes the candidate whose
rollout ended best (success, then not failed, then the task's progress: `outcome_key`). A selector
that sees only the observation can at best match it on the same candidates, so its success bounds
theirs (up to the horizon of the look-ahead: a candidate whose good end lies beyond it ranks by
progress). Simulation only; the look-ahead's actions do not pass the safety filter.

Cost: N x `continue_steps` simulated steps and N x `continue_steps` / `action_horizon` plain
decisions per decision (N = 8, 16 steps, horizon 2: 64 extra decisions).
"""

from __future__ import annotations

import numpy as np

from fmb_core.errors import ParameterError, check_range
from policies.preference.collect import outcome_key, rollout_candidate
from policies.runtime.runner import PolicyRunner, RunnerConfig

CONTINUE_STEPS = 16
"""Steps of each candidate's look-ahead, as preference collection rolls its candidates out."""


class OracleRunner(PolicyRunner):
    """A PolicyRunner whose choice among its candidates is the simulated rollouts' (module
    docstring). `continue_steps`: the look-ahead of each candidate [control steps]."""

    def __init__(self, policy, config: RunnerConfig = RunnerConfig(), *, skill: str = "",
                 continue_steps: int = CONTINUE_STEPS):  # fmt: skip
        super().__init__(policy, config, skill=skill)
        self.continue_steps = int(check_range("continue_steps", continue_steps, 1, 10_000))
        self._world = None
        self.last_outcomes: list[dict] = []

    def act(self, env) -> np.ndarray:
        if not hasattr(env, "snapshot"):
            raise ParameterError(
                f"select oracle tries candidates in a simulator; {type(env).__name__} is not one "
                "(fmb eval and the ablation run it; a robot cannot)"
            )
        self._world = env  # the simulator the candidates are tried in
        try:
            return super().act(env)
        finally:
            self._world = None

    def choose(self, history: list, chunks: np.ndarray) -> np.ndarray:
        env = self._world
        if env is None or len(chunks) == 1:
            return chunks[0]
        snap = env.snapshot()
        # The look-ahead's own draws come from the decision count, not from this runner's
        # generator: the candidates of later decisions stay those of a run without the oracle.
        seed = 7_919 * (self.decisions + 1) + self.t
        self.last_outcomes = [rollout_candidate(env, self, snap, c, self.continue_steps, seed)[0] for c in chunks]
        env.restore(snap)
        best = max(range(len(chunks)), key=lambda i: outcome_key(self.last_outcomes[i]))
        return chunks[best]
