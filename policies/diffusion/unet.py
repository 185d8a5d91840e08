"""1-D temporal U-Net denoiser with FiLM conditioning (the architecture of Diffusion Policy).

The action chunk is a 1-D signal over time with A channels. Every residual block is modulated by
FiLM (per-channel scale and shift) from one vector: the diffusion step's sinusoidal embedding
concatenated with the observation encoding. Shapes: (B, Tp, A) in and out.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class StepEmbedding(nn.Module):
    """(B,) diffusion timesteps -> (B, dim): sinusoidal features followed by an MLP."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(half - 1, 1))
        angles = t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class ConvNormAct(nn.Sequential):
    """Conv1d -> GroupNorm -> Mish, length preserved."""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int):
        super().__init__(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(groups, c_out), nn.Mish())


class FiLMResidualBlock(nn.Module):
    """Two conv blocks; the first one's output is scaled and shifted per channel by the condition."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int):
        super().__init__()
        self.first = ConvNormAct(c_in, c_out, kernel, groups)
        self.second = ConvNormAct(c_out, c_out, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond)[:, :, None].chunk(2, dim=1)  # (B, C, 1) each
        h = self.first(x) * (1 + scale) + shift
        return self.second(h) + self.skip(x)


class TemporalUnet(nn.Module):
    """Denoiser eps(x_t, t | obs) over action chunks.

    Args:
        action_dim: A.
        cond_dim: width of the observation encoding.
        down_dims: channels per level; the time axis halves between levels, so Tp must be a
            multiple of 2 ** (len(down_dims) - 1).
        kernel, groups: convolution kernel size and GroupNorm groups.
        step_dim: width of the diffusion-step embedding.
    """

    def __init__(
        self, action_dim: int, cond_dim: int, down_dims: tuple[int, ...], kernel: int, groups: int, step_dim: int
    ):
        super().__init__()
        self.step_embedding = StepEmbedding(step_dim)
        c = step_dim + cond_dim
        dims = [action_dim, *down_dims]
        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(down_dims) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        FiLMResidualBlock(a, b, c, kernel, groups),
                        FiLMResidualBlock(b, b, c, kernel, groups),
                        nn.Identity() if last else nn.Conv1d(b, b, 3, stride=2, padding=1),
                    ]
                )
            )
        mid = down_dims[-1]
        self.mid = nn.ModuleList([FiLMResidualBlock(mid, mid, c, kernel, groups) for _ in range(2)])
        self.up = nn.ModuleList()
        for a, b in zip(reversed(down_dims[1:]), reversed(down_dims[:-1])):
            self.up.append(
                nn.ModuleList(
                    [
                        FiLMResidualBlock(2 * a, b, c, kernel, groups),
                        FiLMResidualBlock(b, b, c, kernel, groups),
                        nn.ConvTranspose1d(b, b, 4, stride=2, padding=1),
                    ]
                )
            )
        self.out = nn.Sequential(
            ConvNormAct(down_dims[0], down_dims[0], kernel, groups), nn.Conv1d(down_dims[0], action_dim, 1)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: (B, Tp, A) noisy chunk; t: (B,) or scalar timestep; cond: (B, cond_dim)."""
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        c = torch.cat([self.step_embedding(t), cond], dim=-1)
        h = x.transpose(1, 2)  # (B, A, Tp)
        skips = []
        for block1, block2, down in self.down:
            h = block2(block1(h, c), c)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, c)
        for block1, block2, up in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = up(block2(block1(h, c), c))
        return self.out(h).transpose(1, 2)
