"""Training the reward models on a preference folder, with held-out pairwise accuracy.

Episodes (states without an episode: states) are split into training and held-out sets, so that
no held-out observation, nor one from the same episode, was seen in training. Accuracy = the
share of held-out strict preferences whose winner gets the higher reward; the reference policy's
own likelihood (reward -e_ref, no training) is reported beside it as the baseline any learned
reward must beat.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from fmb_core.errors import check_choice, check_range
from policies.preference.checkpoint import LAYOUT_FIELDS, build_net, fingerprint, observation_layout, save_reward
from policies.preference.data import PreferenceSet
from policies.preference.exceptions import PreferenceDataError, RewardModelError
from policies.preference.reward import ReferenceLikelihood

DEFAULT_LR = {"implicit": 1e-4, "explicit": 3e-4}


@dataclasses.dataclass(frozen=True)
class RewardTrainConfig:
    """Settings of `fmb prefs train`.

    Args:
        model: "implicit" (diffusion-DPO fine-tune) or "explicit" (Bradley-Terry head).
        steps: gradient steps; batch_size: preference pairs per step.
        lr: AdamW learning rate (0 = the model's default, DEFAULT_LR).
        beta: DPO / implicit-reward temperature (implicit only).
        max_timestep: low-timestep range [0, max_timestep) of the denoising errors (0 = a tenth
            of the policy's training timesteps, at least 1) (implicit only).
        noise_draws: (timestep, noise) draws averaged per implicit reward at selection time.
        finetune: what DPO trains (implicit only): "all" (a full copy of the policy) or "head"
            (the U-Net's output block only; scoring then needs one U-Net pass instead of two).
        hidden: widths of the explicit head's MLP.
        holdout: share of states held out for the accuracy.
        seed: seed of the split, initialisation and batches.
    """

    model: str = "implicit"
    steps: int = 300
    batch_size: int = 32
    lr: float = 0.0
    beta: float = 1000.0
    max_timestep: int = 0
    noise_draws: int = 4
    finetune: str = "all"
    hidden: tuple[int, ...] = (256, 256)
    holdout: float = 0.2
    seed: int = 0

    def __post_init__(self):
        check_choice("model", self.model, ("implicit", "explicit"))
        check_range("steps", self.steps, 0, 10_000_000)
        check_range("batch_size", self.batch_size, 1, 65536)
        check_range("lr", self.lr, 0.0, 1.0)
        check_range("beta", self.beta, 1e-6, 1e9)
        check_range("noise_draws", self.noise_draws, 1, 1024)
        check_choice("finetune", self.finetune, ("all", "head"))
        check_range("holdout", self.holdout, 0.0, 0.9)


class PairBatches:
    """A preference set as tensors: per-state model inputs (computed once) and candidate chunks."""

    def __init__(self, pset: PreferenceSet, policy, skill: str = ""):
        self.inputs, self.candidates = [], []
        for i in range(len(pset)):
            state = pset.load_state(i)
            self.inputs.append(policy.batch(state["history"], skill))
            cand = policy.action_normalizer.normalize(state["candidates"])
            self.candidates.append(torch.as_tensor(cand, device=policy.device))

    def batch(self, states: list[int]) -> dict:
        return {k: torch.cat([self.inputs[s][k] for s in states]) for k in self.inputs[states[0]]}


def split_states(groups: list, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """(training states, held-out states) for states in `groups` (one key per state, e.g. its
    episode seed: states of one episode stay on one side). A seeded permutation of the groups;
    at least one group on each side when there are two or more."""
    keys = list(dict.fromkeys(groups))
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    k = int(round(len(keys) * holdout))
    if holdout > 0 and len(keys) >= 2:
        k = min(max(k, 1), len(keys) - 1)
    held = set(order[:k])
    return [i for i, g in enumerate(groups) if g not in held], [i for i, g in enumerate(groups) if g in held]


def pairwise_accuracy(score_fn, data: PairBatches, pairs) -> float | None:
    """Share of `pairs` whose winner scores higher; `score_fn(state) -> (K,)` rewards."""
    if not pairs:
        return None
    cache: dict[int, np.ndarray] = {}
    hits = 0
    for p in pairs:
        if p.state not in cache:
            cache[p.state] = score_fn(p.state)
        hits += bool(cache[p.state][p.winner] > cache[p.state][p.loser])
    return hits / len(pairs)


def train_reward(
    prefs: str | Path,
    policy,
    out: str | Path,
    config: RewardTrainConfig,
    progress: bool = True,
    policy_path: str = "",
) -> dict:
    """Train a reward of `config.model` for `policy` (a Policy) on the preference folder
    `prefs`; save it to `out`; return a summary with held-out pairwise accuracies.
    `policy_path` is recorded as the reference's origin."""
    from tqdm import tqdm

    pset = PreferenceSet.open(prefs)
    if policy.skills and pset.task not in policy.skills:
        raise RewardModelError(f"{prefs}: preferences for task {pset.task!r}; the policy knows {policy.skills}")
    theirs = pset.index.get("policy_config")
    if theirs is not None:
        mine = json.loads(json.dumps(policy.config.to_dict()))
        diff = [k for k in LAYOUT_FIELDS if theirs.get(k) != mine.get(k)]
        if diff:
            shown = "; ".join(f"{k}: collected {theirs.get(k)!r}, --policy {mine.get(k)!r}" for k in diff[:3])
            raise PreferenceDataError(f"{prefs}: collected with a policy of another observation layout ({shown})")
    groups = [e.get("episode_seed", f"state {i}") for i, e in enumerate(pset.states)]
    train_states, held_states = split_states(groups, config.holdout, config.seed)
    train_pairs, held_pairs = pset.pairs(train_states), pset.pairs(held_states)
    if not train_pairs:
        raise PreferenceDataError(f"{prefs}: no strict preferences in the training states (only ties or invalid)")
    torch.manual_seed(config.seed)
    settings = {
        "beta": config.beta,
        "max_timestep": config.max_timestep or max(1, policy.config.train_timesteps // 10),
        "noise_draws": config.noise_draws,
        "finetune": config.finetune,
        "hidden": list(config.hidden),
    }
    net = build_net(config.model, policy, settings).to(policy.device)
    data = PairBatches(pset, policy, pset.task)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr or DEFAULT_LR[config.model], weight_decay=0.0)
    rng = np.random.default_rng(config.seed)
    losses = []
    net.train()
    for _ in tqdm(range(config.steps), desc=f"reward {config.model}", unit="step", disable=not progress):
        idx = rng.integers(len(train_pairs), size=config.batch_size)
        chosen = [train_pairs[i] for i in idx]
        batch = data.batch([p.state for p in chosen])
        win = torch.stack([data.candidates[p.state][p.winner] for p in chosen])
        lose = torch.stack([data.candidates[p.state][p.loser] for p in chosen])
        loss = net.pair_loss(batch, win, lose)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()

    def scorer(model):
        def score(state: int) -> np.ndarray:
            gen = torch.Generator(device=policy.device).manual_seed(config.seed)
            with torch.inference_mode():
                return model.score(data.batch([state]), data.candidates[state][None], gen)[0].cpu().numpy()

        return score

    accuracy = {
        "heldout": pairwise_accuracy(scorer(net), data, held_pairs),
        "train": pairwise_accuracy(scorer(net), data, train_pairs),
    }
    if policy.config.policy_type == "diffusion":  # the untrained baseline: the reference's likelihood
        baseline = ReferenceLikelihood(policy.model, 1.0, settings["max_timestep"], settings["noise_draws"])
        accuracy["heldout_reference_likelihood"] = pairwise_accuracy(scorer(baseline.eval()), data, held_pairs)
    meta = {
        "kind": config.model,
        "task": pset.task,
        "layout": observation_layout(policy),
        "reference": {"path": str(policy_path), "fingerprint": fingerprint(policy.model)},
        "settings": settings,
        "training": dataclasses.asdict(config) | {"prefs": str(Path(prefs).absolute())},
        "data": {
            "states": len(pset),
            "train_states": len(train_states),
            "heldout_states": len(held_states),
            "train_pairs": len(train_pairs),
            "heldout_pairs": len(held_pairs),
            "labels": pset.label_counts(),
        },
        "accuracy": accuracy,
        "final_loss": float(np.mean(losses[-20:])) if losses else None,
        "first_loss": float(np.mean(losses[:20])) if losses else None,
    }
    save_reward(Path(out), net, meta)
    return {"out": str(Path(out).absolute()), **{k: meta[k] for k in ("kind", "data", "accuracy", "final_loss")}}
