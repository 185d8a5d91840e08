"""Two reward models over (observation, action chunk), trained from preference pairs.

- `ImplicitReward` (DeformPAM): a copy of the diffusion policy fine-tuned with the diffusion-DPO
  loss against the frozen reference. Its reward is r(o, a) = -beta * (e_theta - e_ref), where
  e is the denoising error of chunk a (`DiffusionModel.denoising_error`) averaged over
  `noise_draws` (timestep, noise) draws at low timesteps t < `max_timestep`. The same draws are
  used for every candidate of a decision, so that their rewards differ only through the chunk.
- `ExplicitReward` (the Bradley-Terry baseline): an observation encoder (started from the
  policy's) and an MLP head over (encoding, flattened chunk) giving a scalar r(o, a).

Chunks enter both normalised to [-1, 1] with the reference policy's action normaliser.
Shapes: B observations, N candidates per observation, D noise draws, Tp x A chunk.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fmb_core.errors import ParameterError


class RewardNet(nn.Module):
    """Contract: `score(batch, actions)` -> (B, N) rewards and `pair_loss(batch, winners, losers)`."""

    kind: ClassVar[str] = ""

    def score(self, batch: dict, actions: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, N) rewards of chunks `actions` (B, N, Tp, A) for the B observations of `batch`."""
        raise NotImplementedError

    def pair_loss(self, batch: dict, winners: torch.Tensor, losers: torch.Tensor) -> torch.Tensor:
        """Scalar loss of B preferences: winners[b] over losers[b] (B, Tp, A) in observation b."""
        raise NotImplementedError


class ImplicitReward(RewardNet):
    """See module docstring. `reference` is the supervised DiffusionModel (kept frozen).

    `finetune` chooses what DPO trains: "all" (a full copy of the policy; scoring runs the U-Net
    twice, once per model) or "head" (only a copy of the U-Net's output block `unet.out`; the
    trunk is the reference's, so one U-Net pass gives both errors: half the scoring time).
    """

    kind = "implicit"
    FINETUNE = ("all", "head")

    def __init__(
        self,
        reference: nn.Module,
        beta: float = 1000.0,
        max_timestep: int = 10,
        noise_draws: int = 4,
        finetune: str = "all",
    ):
        super().__init__()
        if finetune not in self.FINETUNE:
            raise ParameterError(f"unknown finetune {finetune!r}; known: {', '.join(self.FINETUNE)}")
        self.reference = copy.deepcopy(reference).requires_grad_(False).eval()
        self.finetune = finetune
        if finetune == "head":
            if not isinstance(getattr(reference.unet, "out", None), nn.Module):
                raise ParameterError("finetune='head' needs a U-Net with an output block `out`")
            self.model = copy.deepcopy(reference.unet.out).requires_grad_(True)
        else:
            self.model = copy.deepcopy(reference).requires_grad_(True)
        self.beta = float(beta)
        self.max_timestep = int(max_timestep)
        self.noise_draws = int(noise_draws)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def _encode(self, batch):
        """(cond of the fine-tuned model, cond of the reference), each (B, D)."""
        if self.finetune == "head":
            with torch.no_grad():
                c = self.reference.encoder(batch)
            return c, c
        return self.model.encoder(batch), self.reference.encoder(batch)

    def _errors(self, cond_theta, cond_ref, actions, t, noise):
        if self.finetune == "head":
            return self._head_errors(cond_ref, actions, t, noise)
        e_theta = self.model.denoising_error(cond_theta, actions, t, noise)
        with torch.no_grad():
            e_ref = self.reference.denoising_error(cond_ref, actions, t, noise)
        return e_theta, e_ref

    def _head_errors(self, cond, actions, t, noise):
        """Both errors from one reference U-Net pass: its output block's input is captured and
        also fed to the fine-tuned copy of that block."""
        ref = self.reference
        grab = {}
        handle = ref.unet.out.register_forward_hook(lambda m, args, out: grab.update(h=args[0], out=out))
        try:
            with torch.no_grad():
                xt = ref.train_scheduler.add_noise(actions, noise, t)
                pred_ref = ref.unet(xt, t, cond)
        finally:
            handle.remove()
        delta = self.model(grab["h"]) - grab["out"]  # the fine-tuned block's change, in its own layout
        pred_theta = pred_ref + (delta if delta.shape == pred_ref.shape else delta.transpose(1, 2))
        target = noise if ref.config.prediction == "epsilon" else actions
        return (pred_theta - target).pow(2).mean(dim=(1, 2)), (pred_ref - target).pow(2).mean(dim=(1, 2))

    def score(self, batch, actions, generator=None):
        b, n = actions.shape[:2]
        d = self.noise_draws
        dev = actions.device
        t = torch.randint(0, self.max_timestep, (b, d), generator=generator, device=dev)
        noise = torch.randn((b, d, *actions.shape[2:]), generator=generator, device=dev)
        # (B, D, N, ...) flattened: every candidate sees the same D draws.
        rep = lambda x: x[:, :, None].expand(b, d, n, *x.shape[2:]).reshape(b * d * n, *x.shape[2:])  # noqa: E731
        acts = actions[:, None].expand(b, d, *actions.shape[1:]).reshape(b * d * n, *actions.shape[2:])
        cond_theta, cond_ref = self._encode(batch)
        cond = lambda c: c[:, None].expand(b, d * n, c.shape[-1]).reshape(b * d * n, -1)  # noqa: E731
        e_theta, e_ref = self._errors(cond(cond_theta), cond(cond_ref), acts, rep(t), rep(noise))
        diff = (e_theta - e_ref).reshape(b, d, n).mean(dim=1)
        return -self.beta * diff

    def pair_loss(self, batch, winners, losers):
        b = winners.shape[0]
        t = torch.randint(0, self.max_timestep, (b,), device=winners.device)
        noise = torch.randn_like(winners)
        cond_theta, cond_ref = self._encode(batch)
        ew, erw = self._errors(cond_theta, cond_ref, winners, t, noise)
        el, erl = self._errors(cond_theta, cond_ref, losers, t, noise)
        return -F.logsigmoid(-self.beta * ((ew - erw) - (el - erl))).mean()


class ReferenceLikelihood(ImplicitReward):
    """The untrained baseline: r = -beta * e_ref (the reference policy's own denoising error,
    with the implicit reward's draws), i.e. "prefer what the policy finds likely"."""

    kind = "reference"

    def _errors(self, cond_theta, cond_ref, actions, t, noise):
        with torch.no_grad():
            e_ref = self.reference.denoising_error(cond_ref, actions, t, noise)
        return e_ref, torch.zeros_like(e_ref)


class ExplicitReward(RewardNet):
    """Bradley-Terry reward head: encoder(o) ++ flatten(a) -> MLP -> r."""

    kind = "explicit"

    def __init__(self, reference: nn.Module, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.encoder = copy.deepcopy(reference.encoder).requires_grad_(True)
        c = reference.encoder.out_dim + reference.config.pred_horizon * reference.action_dim
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(c, width), nn.Mish()]
            c = width
        layers.append(nn.Linear(c, 1))
        self.head = nn.Sequential(*layers)
        self.hidden = tuple(hidden)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return self.state_dict()

    def load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state)

    def score(self, batch, actions, generator=None):
        b, n = actions.shape[:2]
        cond = self.encoder(batch)[:, None].expand(b, n, -1)
        return self.head(torch.cat([cond, actions.flatten(2)], dim=-1)).squeeze(-1)

    def pair_loss(self, batch, winners, losers):
        r = self.score(batch, torch.stack([winners, losers], dim=1))
        return -F.logsigmoid(r[:, 0] - r[:, 1]).mean()


REWARDS: dict[str, type[RewardNet]] = {cls.kind: cls for cls in (ImplicitReward, ExplicitReward)}
