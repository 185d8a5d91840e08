"""The action-chunk model contract that every model family implements (`policies.diffusion`,
`policies.bc`); `policies.factory.build_model` builds the one a config names.

A model maps a batch of normalised windows to a training loss (`loss`) and samples normalised
action chunks for observations (`sample`). Every family shares the observation encoder, so every
success figure of the diffusion policy has a baseline with the same inputs beside it.

Batch keys (torch tensors): "state" (B, To, S), optional "points" (B, To, K, 6) and
"image" (B, To, H, W, 3) uint8, "cond" (B, C), one input per conditioner of the config
(`policies.conditioners`; GravMap's "subgoal" (B, 4), see policies.gravmap.encoder), and for
training "action" (B, Tp, A) in [-1, 1].
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from policies.common.encoders import ObservationEncoder
from policies.config import PolicyConfig

Guidance = Callable[[torch.Tensor, dict], torch.Tensor]
"""(predicted clean chunks (B*n, Tp, A) with grad, batch) -> cost (B*n,) to lower while sampling."""


class ActionChunkModel(nn.Module):
    """Contract: `loss(batch)` for training, `sample(batch, n)` for acting."""

    name: ClassVar[str] = ""

    def __init__(self, config: PolicyConfig, shapes: dict[str, tuple[int, ...]]):
        super().__init__()
        self.config = config
        self.shapes = {k: tuple(v) for k, v in shapes.items()}
        self.action_dim = shapes["action"][0]
        self.encoder = ObservationEncoder(config, shapes)

    @abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss of a batch."""

    @abstractmethod
    def sample(
        self,
        batch: dict[str, torch.Tensor],
        num_samples: int = 1,
        generator: torch.Generator | None = None,
        guidance: Guidance | None = None,
        guidance_scale: float = 0.0,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """(B, num_samples, Tp, A) normalised action chunks for the B observations in `batch`.
        `guidance` with `guidance_scale` > 0 steers the samples down its cost; `temperature`
        scales the initial noise (< 1: samples nearer the distribution's centre, 0: one
        deterministic chunk with DDIM; > 1: more diverse candidates). Both diffusion only."""
