"""A trained policy ready to act: model + normalisers + feature preparation, on a device.

    policy = Policy.load("runs/insert")            # a run (latest checkpoint) or a checkpoint
    chunks = policy.predict(history, num_samples=16)   # (16, Tp, 7) actions in env units

`history` is the last `obs_horizon` raw observations (dicts as `FmbEnv` returns them), oldest
first. Candidates for one observation are drawn in one batched pass (preference selection ranks them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError
from policies.common import checkpoint
from policies.common.features import MinMaxNormalizer, condition_vector, episode_features
from policies.conditioners import conditioners_of
from policies.config import PolicyConfig


def resolve_device(device: str = "auto") -> str:
    """ "cuda" when asked for it or when `auto` finds one, else "cpu"."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device cuda: no CUDA device is available (use cpu or auto)", "device", device)
    if device not in ("cpu", "cuda"):
        raise ParameterError(f"unknown device {device!r}; known: auto, cpu, cuda", "device", device)
    return device


class Policy:
    """See module docstring.

    Args:
        model: an ActionChunkModel (weights loaded).
        state_normalizer, action_normalizer: the training data's stats.
        meta: the checkpoint's config.json contents (data summary, step).
        device: "cpu" or "cuda".
        seed: seed of the point subsampling of live observations.
    """

    def __init__(self, model, state_normalizer, action_normalizer, meta: dict, device: str = "cpu", seed: int = 0):
        self.model = model.to(device).eval()
        self.config: PolicyConfig = model.config
        self.conditioners = conditioners_of(self.config)
        self.state_normalizer = state_normalizer
        self.action_normalizer = action_normalizer
        self.meta = meta
        self.device = device
        self._rng = np.random.default_rng(seed)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", seed: int = 0) -> Policy:
        """Rebuild a policy from a checkpoint folder or a run folder (its latest checkpoint)."""
        from policies.factory import build_model

        folder = checkpoint.resolve(path)
        meta = checkpoint.load_meta(folder)
        try:
            config = PolicyConfig.from_dict(meta["policy"])
            norms = {k: MinMaxNormalizer.from_dict(v) for k, v in meta["normalizers"].items()}
            model = build_model(config, {k: tuple(v) for k, v in meta["shapes"].items()})
        except (ParameterError, KeyError, TypeError, ValueError) as e:
            raise checkpoint.CheckpointError(
                f"{folder / checkpoint.CONFIG}: does not describe a valid policy ({e})"
            ) from None
        checkpoint.load_weights(folder, model)
        return cls(model, norms["state"], norms["action"], meta, resolve_device(device), seed)

    @property
    def skills(self) -> tuple[str, ...]:
        return self.config.skills

    def batch(self, history: list[dict], skill: str = "", family: str = "") -> dict:
        """Model inputs (torch, batch of 1) for `history` (most recent last; shorter histories
        repeat their first observation, as at the start of training episodes)."""
        import torch

        to = self.config.obs_horizon
        if not history:
            raise ParameterError("predict needs at least one observation")
        history = [history[0]] * (to - len(history)) + list(history[-to:])
        stacked = {k: np.stack([np.asarray(h[k]) for h in history]) for k in history[-1]}
        feats = episode_features(stacked, self.config, self._rng)
        out = {"state": self.state_normalizer.normalize(feats["state"])[None]}
        for key in ("points", "image"):
            if key in feats:
                out[key] = feats[key][None]
        out["cond"] = condition_vector(self.config, skill or (self.skills[0] if self.skills else ""), family)[None]
        for conditioner in self.conditioners:  # e.g. GravMap's sub-goal relative to the current TCP
            out[conditioner.batch_key] = conditioner.observation_inputs(history[-1])[None]
        return {k: torch.as_tensor(v, device=self.device) for k, v in out.items()}

    def predict(
        self,
        history: list[dict],
        num_samples: int = 1,
        seed: int | None = None,
        skill: str = "",
        family: str = "",
        guidance: float = 0.0,
        temperature: float = 1.0,
    ) -> np.ndarray:
        """(num_samples, Tp, A) action chunks in environment units for one observation history.
        `guidance` > 0 steers the samples towards the observation's sub-goal (policies.gravmap);
        `temperature` scales the diffusion's initial noise (ActionChunkModel.sample)."""
        import torch

        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        guide = None
        if guidance > 0:
            from policies.gravmap.conditioner import spec_of
            from policies.gravmap.guidance import SubgoalGuidance

            n = self.action_normalizer
            guide = SubgoalGuidance(n.low, n.high, self.config.obs_horizon - 1, spec_of(self.config))
        with torch.no_grad() if guide is not None else torch.inference_mode():  # guidance needs autograd
            batch = self.batch(history, skill, family)
            chunks = self.model.sample(batch, num_samples, generator, guide, guidance, temperature)[0]
        return self.action_normalizer.unnormalize(chunks.float().cpu().numpy())
