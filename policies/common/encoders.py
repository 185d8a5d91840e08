"""Observation encoders: state MLP, PointNet-style point encoder (as in 3D Diffusion Policy), and a
small GroupNorm CNN for images (no pretrained weights). `ObservationEncoder` runs the ones a
config asks for on every step of the observation history and concatenates the results with the
skill/object one-hots into one conditioning vector.

Shapes: B batch, To observation steps, K points, H x W image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.conditioners import conditioners_of
from policies.config import PolicyConfig


class StateEncoder(nn.Module):
    """(B, To, S) normalised state -> (B, To, feature_dim)."""

    def __init__(self, state_dim: int, hidden: int, out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, hidden), nn.Mish(), nn.Linear(hidden, out))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state)


class PointEncoder(nn.Module):
    """(B, To, K, 6) local points (xyz + rgb in [-1, 1]) -> (B, To, feature_dim).

    A shared per-point MLP with LayerNorm, max-pooled over points, then a linear projection:
    the light PointNet of 3D Diffusion Policy (DP3), with colour as three extra channels.
    """

    def __init__(self, channels: tuple[int, ...], out: int, in_channels: int = 6):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for width in channels:
            layers += [nn.Linear(c, width), nn.LayerNorm(width), nn.ReLU()]
            c = width
        self.mlp = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(c, out), nn.LayerNorm(out))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.project(self.mlp(points).amax(dim=-2))


class ImageEncoder(nn.Module):
    """(B, To, H, W, 3) uint8 -> (B, To, feature_dim): four stride-2 conv blocks with GroupNorm,
    global average pooling and a linear layer. Images are resized to `size` first."""

    def __init__(self, size: int, out: int, width: int = 32):
        super().__init__()
        self.size = size
        blocks: list[nn.Module] = []
        c = 3
        for w in (width, width, 2 * width, 2 * width):
            blocks += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.GroupNorm(8, w), nn.Mish()]
            c = w
        self.conv = nn.Sequential(*blocks)
        self.head = nn.Linear(c, out)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b, t = image.shape[:2]
        x = image.reshape(b * t, *image.shape[2:]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = self.conv(x).mean(dim=(-2, -1))
        return self.head(x).reshape(b, t, -1)


class ObservationEncoder(nn.Module):
    """All inputs of one decision -> (B, cond_dim) conditioning vector: the observation part, then
    one token per conditioner of the config (`policies.conditioners`, e.g. GravMap's of
    batch["subgoal"]), in the config's order.

    Args:
        config: which encoders and their sizes.
        shapes: per-step feature shapes from the dataset ("state", optional "points", "image", "cond").
    """

    def __init__(self, config: PolicyConfig, shapes: dict[str, tuple[int, ...]]):
        super().__init__()
        f = config.feature_dim
        self.state = StateEncoder(shapes["state"][0], config.state_hidden, f)
        self.points = PointEncoder(config.point_channels, f, shapes["points"][-1]) if "points" in shapes else None
        self.image = ImageEncoder(config.image_size, f) if "image" in shapes else None
        per_step = f * (1 + (self.points is not None) + (self.image is not None))
        self.obs_dim = per_step * config.obs_horizon + shapes.get("cond", (0,))[0]
        """Width of the observation part (what the plain denoiser sees)."""
        conditioners = conditioners_of(config)
        self.conditioner_keys = {c.name: c.batch_key for c in conditioners}
        self.conditioners = nn.ModuleDict({c.name: c.encoder(f) for c in conditioners})
        self.out_dim = self.obs_dim + f * len(self.conditioners)
        """Width of the whole encoding: observation part, then the conditioners' tokens."""

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = [self.state(batch["state"])]
        if self.points is not None:
            feats.append(self.points(batch["points"]))
        if self.image is not None:
            feats.append(self.image(batch["image"]))
        x = torch.cat(feats, dim=-1).flatten(1)  # (B, To * per_step)
        if batch.get("cond") is not None and batch["cond"].shape[-1]:
            x = torch.cat([x, batch["cond"]], dim=-1)
        for name, encoder in self.conditioners.items():
            x = torch.cat([x, encoder(batch[self.conditioner_keys[name]])], dim=-1)
        return x
