"""Action-chunk models: the diffusion policy and the behaviour-cloning baseline, behind one contract.

A model maps a batch of normalised windows to a training loss (`loss`) and samples normalised
action chunks for observations (`sample`). Both share the observation encoder, so every success
figure of the diffusion policy has a baseline with the same inputs beside it.

Batch keys (torch tensors): "state" (B, To, S), optional "points" (B, To, K, 6) and
"image" (B, To, H, W, 3) uint8, "cond" (B, C), and for training "action" (B, Tp, A) in [-1, 1].
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fmb.errors import check_choice
from policies.config import PolicyConfig
from policies.encoders import ObservationEncoder
from policies.unet import TemporalUnet

MODELS: dict[str, type[ActionChunkModel]] = {}


def register_model(cls):
    MODELS[cls.name] = cls
    return cls


def build_model(config: PolicyConfig, shapes: dict[str, tuple[int, ...]]) -> ActionChunkModel:
    """The model of `config.policy_type` for data with per-step feature `shapes`."""
    check_choice("policy type", config.policy_type, MODELS)
    return MODELS[config.policy_type](config, shapes)


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
        self, batch: dict[str, torch.Tensor], num_samples: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, num_samples, Tp, A) normalised action chunks for the B observations in `batch`."""


@register_model
class DiffusionModel(ActionChunkModel):
    """DDPM-trained denoiser (predicting the noise or the clean chunk) sampled with DDIM,
    DPM-Solver++ or DDPM."""

    name = "diffusion"

    def __init__(self, config: PolicyConfig, shapes: dict[str, tuple[int, ...]]):
        super().__init__(config, shapes)
        self.unet = TemporalUnet(
            self.action_dim,
            self.encoder.out_dim,
            config.down_dims,
            config.kernel_size,
            config.n_groups,
            config.step_embed_dim,
        )
        self.train_scheduler = make_scheduler("ddpm", config)

    def loss(self, batch):
        x0 = batch["action"]
        cond = self.encoder(batch)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.config.train_timesteps, (x0.shape[0],), device=x0.device)
        xt = self.train_scheduler.add_noise(x0, noise, t)
        target = noise if self.config.prediction == "epsilon" else x0
        return F.mse_loss(self.unet(xt, t, cond), target)

    def denoising_error(self, cond: torch.Tensor, actions: torch.Tensor, t: torch.Tensor, noise: torch.Tensor):
        """(B,) mean squared error of the denoiser's prediction (noise or clean chunk, as trained)
        for chunks `actions` (B, Tp, A) noised with `noise` to timesteps `t` (B,), given encoded
        observations `cond` (B, D)."""
        xt = self.train_scheduler.add_noise(actions, noise, t)
        target = noise if self.config.prediction == "epsilon" else actions
        return (self.unet(xt, t, cond) - target).pow(2).mean(dim=(1, 2))

    @torch.no_grad()
    def sample(self, batch, num_samples=1, generator=None):
        cond = self.encoder(batch)
        b = cond.shape[0]
        cond = cond.repeat_interleave(num_samples, dim=0)
        shape = (b * num_samples, self.config.pred_horizon, self.action_dim)
        x = torch.randn(shape, generator=generator, device=cond.device)
        scheduler = make_scheduler(self.config.scheduler, self.config)
        scheduler.set_timesteps(self.config.inference_steps, device=cond.device)
        for t in scheduler.timesteps:
            out = self.unet(x, t.to(cond.device), cond)
            x = scheduler.step(out, t, x, generator=generator).prev_sample
        return x.reshape(b, num_samples, *shape[1:]).clamp(-1.0, 1.0)


@register_model
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
    def sample(self, batch, num_samples=1, generator=None):
        chunk = self._predict(batch).clamp(-1.0, 1.0)
        return chunk[:, None].expand(-1, num_samples, -1, -1).contiguous()


def make_scheduler(kind: str, config: PolicyConfig):
    """A fresh diffusers noise scheduler of `kind` (ddpm, ddim, dpm) with the config's schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    common = {
        "num_train_timesteps": config.train_timesteps,
        "beta_schedule": config.beta_schedule,
        "prediction_type": config.prediction,
    }
    if kind == "ddpm":
        return DDPMScheduler(**common, clip_sample=True, variance_type="fixed_small")
    if kind == "ddim":
        return DDIMScheduler(**common, clip_sample=True, set_alpha_to_one=True, steps_offset=0)
    if kind == "dpm":
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)
    raise ValueError(kind)
