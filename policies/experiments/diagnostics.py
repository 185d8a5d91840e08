"""Offline diagnostics of a goal-conditioned policy on demonstration windows (no simulation).

`goal_response` asks how much the policy's next move follows its command. For windows of held-out
demonstrations near their goal, the goal is shifted by +-`shift` along each base axis and the
change of the first executed translation is divided by the change of the goal: the *goal gain*.
For reference it fits the same slope to the demonstrations themselves (the expert's move against
its goal offset over the same windows, least squares): a policy that reads its goal as the expert
does has gains near those. A gain of 0.3 where the expert's is 1 means a 2 mm error of alignment
is corrected by 0.6 mm per step, and a peg that meets the board's chamfer off the axis stays
there. It also reports the open-loop error of the first executed translations against the
demonstrations' own.

    fmb bench goal-response --policy RUN --data HELD_OUT_DEMOS [--json]

Sampling is deterministic (temperature 0, DDIM from zero noise), so every figure is a function of
the weights alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError, check_range

GOAL_WIDTH = 9
"""Goal features in the state vector: position offset (3) + 6-D relative rotation (last, see
policies.common.dataset.fit_config_to_data)."""


def _predict(policy, batch: dict, temperature: float = 0.0) -> np.ndarray:
    """(B, Tp, A) action chunks in environment units for a batch of normalised windows."""
    import torch

    inputs = {k: torch.as_tensor(v, device=policy.device) for k, v in batch.items() if k != "action"}
    generator = torch.Generator(device=policy.device).manual_seed(0)
    with torch.inference_mode():
        chunks = policy.model.sample(inputs, 1, generator, temperature=temperature)[:, 0]
    return policy.action_normalizer.unnormalize(chunks.float().cpu().numpy())


def goal_response(
    policy_path: str | Path,
    data: list[str | Path],
    shift: float = 0.002,
    near: float = 0.005,
    max_windows: int = 256,
    device: str = "cpu",
) -> dict:
    """Goal gains per axis and open-loop error of the policy at `policy_path` on the stores `data`.

    Args:
        shift: goal shift [m] (each sign) along each base axis.
        near: only windows whose goal lies within this [m] of the TCP across x and y (the
            alignment and insertion phase, where no speed limit clips the expert's correction).
        max_windows: at most this many windows, evenly spaced over the selection.
    """
    from policies.common.dataset import SequenceDataset, open_stores
    from policies.runtime.policy import Policy

    check_range("shift", shift, 1e-4, 0.05, unit="m")
    check_range("near", near, 1e-4, 0.5, unit="m")
    check_range("max_windows", max_windows, 1, 100_000)
    policy = Policy.load(policy_path, device)
    config = policy.config
    if not config.state_keys or config.state_keys[-1] != "goal":
        raise ParameterError(f"{policy_path}: the policy is not goal-conditioned (train it with --goal)")
    dataset = SequenceDataset(open_stores(data), config, seed=0, progress=False)
    dataset.state_normalizer, dataset.action_normalizer = policy.state_normalizer, policy.action_normalizer
    episode = np.repeat(np.arange(len(dataset.lengths)), dataset.lengths)
    step = np.concatenate([np.arange(n) for n in dataset.lengths])
    goal = dataset._flat["state"][:, -GOAL_WIDTH : -GOAL_WIDTH + 3]  # goal minus TCP position [m]
    chosen = np.flatnonzero(np.linalg.norm(goal[:, :2], axis=1) < near)
    if len(chosen) == 0:
        raise ParameterError(f"no window of the data has its goal within --near {near} m of the TCP")
    chosen = chosen[np.linspace(0, len(chosen) - 1, min(max_windows, len(chosen))).astype(int)]
    batch = dataset._windows(episode[chosen], step[chosen])
    now = config.obs_horizon - 1  # the chunk's first executed action
    low, high = np.asarray(policy.state_normalizer.low), np.asarray(policy.state_normalizer.high)
    column = batch["state"].shape[-1] - GOAL_WIDTH
    gains = {}
    for axis, name in enumerate("xyz"):
        moves = []
        for sign in (-1.0, 1.0):
            shifted = dict(batch, state=batch["state"].copy())
            span = high[column + axis] - low[column + axis]
            shifted["state"][..., column + axis] += sign * shift * 2.0 / max(span, 1e-12)
            moves.append(_predict(policy, shifted)[:, now, axis])
        gains[name] = float(np.mean(moves[1] - moves[0]) / (2 * shift))
    predicted = _predict(policy, batch)[:, now, :3]
    expert = dataset.action_normalizer.unnormalize(batch["action"])[:, now, :3]
    error = np.linalg.norm(predicted - expert, axis=1)
    offset = goal[chosen]
    # The demonstrations' own gain: least-squares slope of the expert's move on the goal offset.
    demo = {name: float(np.polyfit(offset[:, a], expert[:, a], 1)[0]) for a, name in enumerate("xyz")}
    return {
        "policy": str(Path(policy_path).absolute()),
        "policy_type": config.policy_type,
        "data": [str(Path(d).absolute()) for d in data],
        "windows": int(len(chosen)),
        "shift_m": shift,
        "near_m": near,
        "goal_gain": gains,
        "goal_gain_lateral": (gains["x"] + gains["y"]) / 2,
        "demonstration_gain": demo,
        "demonstration_gain_lateral": (demo["x"] + demo["y"]) / 2,
        "open_loop_error_mm": {
            "mean": float(error.mean() * 1000),
            "median": float(np.median(error) * 1000),
            "p90": float(np.percentile(error, 90) * 1000),
        },
    }
