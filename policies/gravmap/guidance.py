"""Guidance during sampling: steer sampled action chunks towards the current sub-goal by the
gradient of the GravMap cost (classifier guidance on the predicted clean chunk, see
`DiffusionModel.sample`).

The cost of a chunk is a soft minimum over its executed steps k >= obs_horizon - 1 of
cost(p_k - s), where p_k is the TCP position the chunk reaches (the running sum of its position
deltas from the current TCP, in metres) and s the sub-goal relative to the current TCP: it is low
when the chunk passes through the sub-goal, wherever along the chunk that happens.
"""

from __future__ import annotations

import torch

from policies.gravmap.maps import GravMapSpec, cost_value


class SubgoalGuidance:
    """Cost of normalised chunks for the `models.Guidance` hook.

    Args:
        action_low, action_high: (A,) the action normaliser's bounds (chunks are in [-1, 1]).
        first: chunk index of the current step (obs_horizon - 1).
        spec: the map spec (its `rho` shapes the cost).
        temperature: of the soft minimum over steps (cost units).
    """

    def __init__(self, action_low, action_high, first: int, spec: GravMapSpec = GravMapSpec(), temperature=0.05):
        low = torch.as_tensor(action_low, dtype=torch.float32)[:3]
        high = torch.as_tensor(action_high, dtype=torch.float32)[:3]
        self.half_span = torch.where(high - low > 1e-6, (high - low) / 2, torch.zeros_like(low))
        self.centre = (high + low) / 2
        self.first = int(first)
        self.rho = spec.rho
        self.temperature = float(temperature)

    def positions(self, x0: torch.Tensor) -> torch.Tensor:
        """(N, Tp - first, 3) TCP positions [m] relative to the current TCP along chunks (N, Tp, A)."""
        delta = x0[..., :3] * self.half_span.to(x0.device) + self.centre.to(x0.device)
        return torch.cumsum(delta[:, self.first :], dim=1)

    def __call__(self, x0: torch.Tensor, batch: dict) -> torch.Tensor:
        """(N,) cost of chunks `x0` (N, Tp, A) for sub-goals batch["subgoal"] (N, 4)."""
        if "subgoal" not in batch:
            raise KeyError("guidance needs the sub-goal (batch['subgoal']); give the runner sub-goals")
        cost = cost_value(self.positions(x0), batch["subgoal"][:, None, :3].to(x0.dtype), self.rho)
        return -self.temperature * torch.logsumexp(-cost / self.temperature, dim=1)
