"""The behaviour-cloning baseline: an MLP regressing the whole action chunk from the same
observation encoding as the diffusion policy (mean squared error)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.common.model import ActionChunkModel
from policies.config import PolicyConfig


class BCModel(ActionChunkModel):
    """Regresses the whole chunk from the encoding with an MLP (mean squared error)."""

    name = "bc"

    def __init__(self, config: PolicyConfig, shapes: dict[str, tuple[int, ...]]):
        super().__init__(config, shapes)
        layers: list[nn.Module] = []
        c = self.encoder.out_dim
        for width in config.bc_hidden:
            layers += [nn.Linear(c, width), nn.Mish()]
            c = width
        layers.append(nn.Linear(c, config.pred_horizon * self.action_dim))
        self.head = nn.Sequential(*layers)

    def _predict(self, batch):
        return self.head(self.encoder(batch)).reshape(-1, self.config.pred_horizon, self.action_dim)

    def loss(self, batch):
        return F.mse_loss(self._predict(batch), batch["action"])

    @torch.no_grad()
    def sample(self, batch, num_samples=1, generator=None, guidance=None, guidance_scale=0.0, temperature=1.0):
        chunk = self._predict(batch).clamp(-1.0, 1.0)
        return chunk[:, None].expand(-1, num_samples, -1, -1).contiguous()
