"""The diffusion policy: a 1D temporal U-Net (`policies.diffusion.unet`) denoising action chunks,
trained as a DDPM and sampled with DDIM, DPM-Solver++ or DDPM (diffusers' schedulers).

With conditioners (`config.conditioners`, e.g. GravMap): the plain U-Net sees only the
observation part of the encoding; a second, half-width U-Net that also sees the conditioners'
tokens adds a correction to the channels they condition (`Conditioner.action_channels`: for
GravMap the position xyz and the gripper, never the rotation). Its output layer starts at zero,
so training starts from the plain denoiser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.common.model import ActionChunkModel
from policies.conditioners import conditioners_of
from policies.config import PolicyConfig
from policies.diffusion.unet import TemporalUnet


class DiffusionModel(ActionChunkModel):
    """DDPM-trained denoiser (predicting the noise or the clean chunk) sampled with DDIM,
    DPM-Solver++ or DDPM."""

    name = "diffusion"

    def __init__(self, config: PolicyConfig, shapes: dict[str, tuple[int, ...]]):
        super().__init__(config, shapes)
        self.unet = TemporalUnet(
            self.action_dim,
            self.encoder.obs_dim,  # = out_dim without conditioners
            config.down_dims,
            config.kernel_size,
            config.n_groups,
            config.step_embed_dim,
        )
        self.position_unet = None  # the conditioned branch (named for GravMap's position channels)
        conditioners = conditioners_of(config)
        if conditioners:
            dims = tuple(c // 2 if (c // 2) % config.n_groups == 0 else c for c in config.down_dims)
            self.position_unet = TemporalUnet(
                self.action_dim, self.encoder.out_dim, dims, config.kernel_size, config.n_groups, config.step_embed_dim
            )
            last = self.position_unet.out[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            channels = {c for k in conditioners for c in (k.action_channels or range(self.action_dim))}
            mask = torch.zeros(self.action_dim)
            mask[[c for c in sorted(channels) if c < self.action_dim]] = 1.0
            self.register_buffer("conditioned_mask", mask, persistent=False)
        self.train_scheduler = make_scheduler("ddpm", config)

    def denoise(self, xt: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The denoiser's output (noise or clean chunk, as trained) (B, Tp, A) for noisy chunks
        `xt` (B, Tp, A) at timesteps `t` given the encoding `cond` (B, encoder.out_dim)."""
        if self.position_unet is None:
            return self.unet(xt, t, cond)
        out = self.unet(xt, t, cond[:, : self.encoder.obs_dim])
        return out + self.position_unet(xt, t, cond) * self.conditioned_mask

    def loss(self, batch):
        x0 = batch["action"]
        cond = self.encoder(batch)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.config.train_timesteps, (x0.shape[0],), device=x0.device)
        xt = self.train_scheduler.add_noise(x0, noise, t)
        target = noise if self.config.prediction == "epsilon" else x0
        return F.mse_loss(self.denoise(xt, t, cond), target)

    def denoising_error(self, cond: torch.Tensor, actions: torch.Tensor, t: torch.Tensor, noise: torch.Tensor):
        """(B,) mean squared error of the denoiser's prediction (noise or clean chunk, as trained)
        for chunks `actions` (B, Tp, A) noised with `noise` to timesteps `t` (B,), given encoded
        observations `cond` (B, D)."""
        xt = self.train_scheduler.add_noise(actions, noise, t)
        target = noise if self.config.prediction == "epsilon" else actions
        return (self.denoise(xt, t, cond) - target).pow(2).mean(dim=(1, 2))

    @torch.no_grad()
    def sample(self, batch, num_samples=1, generator=None, guidance=None, guidance_scale=0.0, temperature=1.0):
        """See ActionChunkModel.sample. Guidance (classifier guidance on the predicted clean
        chunk): at every denoising step the prediction x0 moves to x0 - scale * grad cost(x0)
        before the scheduler's update (for an epsilon model, x0 is derived from the noise and the
        noise re-derived from the moved x0)."""
        cond = self.encoder(batch)
        b = cond.shape[0]
        cond = cond.repeat_interleave(num_samples, dim=0)
        shape = (b * num_samples, self.config.pred_horizon, self.action_dim)
        x = torch.randn(shape, generator=generator, device=cond.device) * temperature
        scheduler = make_scheduler(self.config.scheduler, self.config)
        scheduler.set_timesteps(self.config.inference_steps, device=cond.device)
        guided = guidance is not None and guidance_scale > 0
        if guided:
            rows = {k: v.repeat_interleave(num_samples, dim=0) for k, v in batch.items()}
        for t in scheduler.timesteps:
            out = self.denoise(x, t.to(cond.device), cond)
            if guided:
                out = self._guide(out, x, t, rows, guidance, guidance_scale)
            x = scheduler.step(out, t, x, generator=generator).prev_sample
        return x.reshape(b, num_samples, *shape[1:]).clamp(-1.0, 1.0)

    def _guide(self, out, x, t, rows, guidance, scale):
        """`out` with its clean-chunk estimate moved down the gradient of `guidance`."""
        abar = self.train_scheduler.alphas_cumprod.to(x.device)[t]
        eps = self.config.prediction == "epsilon"
        x0 = (x - (1 - abar).sqrt() * out) / abar.sqrt() if eps else out
        with torch.enable_grad():
            x0g = x0.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(guidance(x0g, rows).sum(), x0g)
        x0 = x0 - scale * grad
        return (x - abar.sqrt() * x0) / (1 - abar).sqrt() if eps else x0


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
