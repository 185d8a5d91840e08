"""Reward checkpoints: a folder that rebuilds a reward model beside its reference policy.

    OUT/config.json         schema "fmb-reward/1", kind (implicit | explicit), task, observation
                            layout, reference policy (path + weight fingerprint), model settings,
                            held-out accuracy
    OUT/model.safetensors   the trained weights (implicit: the fine-tuned policy copy;
                            explicit: encoder + head)

A reward model only makes sense with the policy it was trained against (the implicit reward is a
difference to that policy's errors; both see chunks through its action normaliser), for its task
and observation layout. `load_reward` checks all three and names what differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from fmb_core.atomic import atomic_dir
from fmb_core.jsonfile import read_versioned
from policies.preference.exceptions import RewardModelError

SCHEMA = "fmb-reward/1"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
LAYOUT_FIELDS = ("obs_horizon", "pred_horizon", "state_keys", "points", "crop_low", "crop_high", "image_key", "goal")


def observation_layout(policy) -> dict:
    """What a reward model's inputs depend on: the policy's input fields, feature shapes,
    rendered observation (cameras, cloud size) and action normaliser."""
    c = policy.config.to_dict()
    return {
        **{k: list(c[k]) if isinstance(c[k], list | tuple) else c[k] for k in LAYOUT_FIELDS},
        "shapes": {k: list(v) for k, v in sorted(policy.model.shapes.items())},
        "observation": {k: policy.meta.get("observation", {}).get(k) for k in ("cameras", "point_cloud", "image_size")},
        "action_normalizer": policy.action_normalizer.to_dict(),
    }


def fingerprint(model) -> str:
    """sha256 (first 16 hex digits) of a module's weights, in name order."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_reward(out: Path, net, meta: dict) -> Path:
    """Write `net`'s trainable weights and `meta` (kind, task, layout, reference, settings)."""
    from safetensors.torch import save_file

    with atomic_dir(out) as tmp:
        (tmp / CONFIG).write_text(json.dumps({"schema": SCHEMA, **meta}, indent=1))
        state = {k: v.detach().cpu().contiguous() for k, v in net.trainable_state().items()}
        save_file(state, str(tmp / WEIGHTS))
    return Path(out)


def load_meta(path: Path) -> dict:
    return read_versioned(
        Path(path) / CONFIG,
        SCHEMA,
        ("kind", "task", "layout", "reference", "settings"),
        RewardModelError,
        f"; is {path} a reward model (fmb prefs train)?",
    )


def check_compatible(meta: dict, policy, task: str | None, where: Path) -> None:
    """RewardModelError when the reward was trained for another task, layout or reference."""
    if task is not None and task != meta["task"]:
        raise RewardModelError(f"{where}: trained for task {meta['task']!r}, used for task {task!r}")
    layout = observation_layout(policy)
    diff = [k for k in sorted(set(layout) | set(meta["layout"])) if layout.get(k) != meta["layout"].get(k)]
    if diff:
        shown = "; ".join(f"{k}: trained {meta['layout'].get(k)!r}, policy {layout.get(k)!r}" for k in diff[:3])
        raise RewardModelError(f"{where}: trained for another observation layout ({shown})")
    if meta["kind"] == "implicit" and meta["reference"].get("fingerprint") != fingerprint(policy.model):
        raise RewardModelError(
            f"{where}: an implicit reward of the policy {meta['reference'].get('path')} "
            f"(weights {meta['reference'].get('fingerprint')}); the policy given has other weights "
            f"({fingerprint(policy.model)})"
        )


class RewardModel:
    """A trained reward net with the policy it belongs to; scores chunks in environment units.

    Args:
        net: an ImplicitReward or ExplicitReward (weights loaded).
        policy: the reference Policy (features, action normaliser).
        meta: the checkpoint's config.json contents.
        seed: seed of the implicit reward's noise draws (the same draws at every decision).
    """

    def __init__(self, net, policy, meta: dict, seed: int = 0):
        self.net = net.to(policy.device).eval()
        self.policy = policy
        self.meta = meta
        self.seed = seed

    @property
    def kind(self) -> str:
        return self.net.kind

    def score(self, history: list[dict], candidates: np.ndarray, skill: str = "", family: str = "") -> np.ndarray:
        """(N,) rewards of `candidates` (N, Tp, A) [env units] after the observation `history`."""
        import torch

        batch = self.policy.batch(history, skill, family)
        acts = torch.as_tensor(self.policy.action_normalizer.normalize(candidates), device=self.policy.device)
        gen = torch.Generator(device=self.policy.device).manual_seed(self.seed)
        with torch.inference_mode():
            return self.net.score(batch, acts[None], gen)[0].float().cpu().numpy()


def build_net(kind: str, policy, settings: dict):
    """A fresh reward net of `kind` around `policy`'s model with `settings` (see REWARDS)."""
    from policies.preference.reward import REWARDS

    if kind not in REWARDS:
        raise RewardModelError(f"unknown reward model {kind!r}; known: {', '.join(REWARDS)}")
    if kind == "implicit":
        if policy.config.policy_type != "diffusion":
            raise RewardModelError(f"the implicit reward needs a diffusion policy, not {policy.config.policy_type!r}")
        return REWARDS[kind](
            policy.model,
            settings["beta"],
            settings["max_timestep"],
            settings["noise_draws"],
            settings.get("finetune", "all"),
        )
    return REWARDS[kind](policy.model, tuple(settings["hidden"]))


def load_reward(path: str | Path, policy, task: str | None = None, seed: int = 0) -> RewardModel:
    """Load the reward model at `path` for `policy` (checked: task, observation layout, reference)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta = load_meta(path)
    check_compatible(meta, policy, task, path)
    net = build_net(meta["kind"], policy, meta["settings"])
    file = path / WEIGHTS
    try:
        net.load_trainable(load_file(str(file)))
    except FileNotFoundError:
        raise RewardModelError(f"{file}: missing") from None
    except (SafetensorError, OSError, RuntimeError) as e:
        raise RewardModelError(f"{file}: does not fit the {meta['kind']} reward of this policy ({e})") from None
    return RewardModel(net, policy, meta, seed)
