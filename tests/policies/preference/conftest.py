"""Fixtures of the preference tests: a tiny trained policy and a toy preference set whose winners
are expert chunks and whose losers are the same chunks corrupted with noise."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="preference models need the 'learn' extra (torch)")

from policies.preference.data import PreferenceSet  # noqa: E402
from policies.train import train  # noqa: E402
from sim.limits import DEFAULT_ACTION_LIMITS  # noqa: E402
from tests.policies.conftest import tiny, tiny_training  # noqa: E402


@pytest.fixture(scope="session")
def tiny_run(state_store, tmp_path_factory):
    """A tiny diffusion policy (state only) trained briefly on three insertion demonstrations."""
    run = tmp_path_factory.mktemp("prefs") / "run"
    train(
        [state_store.root],
        run,
        tiny(points=0),
        tiny_training(steps=60, checkpoint_every=60),
        progress=False,
        log=lambda m: None,
    )
    return run


@pytest.fixture(scope="session")
def tiny_policy(tiny_run):
    from policies.runtime.policy import Policy

    return Policy.load(tiny_run, "cpu")


def corrupt(chunk: np.ndarray, rng: np.random.Generator, scale: float = 0.02) -> np.ndarray:
    """The chunk with noise on its translation deltas [m] (clipped to FMB's per-component step limit)."""
    out = chunk.copy()
    limit = DEFAULT_ACTION_LIMITS.max_step_translation
    out[:, :3] = np.clip(out[:, :3] + rng.normal(0, scale, out[:, :3].shape), -limit, limit)
    return out


def make_toy_prefs(store, root, pred_horizon: int = 8, losers: int = 4) -> PreferenceSet:
    """Every state of the demonstrations: the expert chunk (winner) against `losers` corrupted
    copies (ties among them), in shuffled order."""
    rng = np.random.default_rng(0)
    pset = PreferenceSet.create(root, {"task": "insert", "source": "toy"})
    for ep in store.iter_episodes():
        d = ep.data
        keys = [k[4:] for k in d if k.startswith("obs/")]
        steps = len(d["action"])
        for t in range(1, steps - pred_horizon):
            history = [{k: d[f"obs/{k}"][s] for k in keys} for s in (t - 1, t)]
            good = d["action"][t - 1 : t - 1 + pred_horizon]
            cands = [good] + [corrupt(good, rng) for _ in range(losers)]
            order = rng.permutation(len(cands))
            where = {int(o): i for i, o in enumerate(order)}  # original -> stored position
            pairs = [[where[0], where[j], "first"] for j in range(1, len(cands))]
            pairs += [[where[i], where[j], "tie"] for i in range(1, len(cands)) for j in range(i + 1, len(cands))]
            pset.add_state(history, np.stack([cands[o] for o in order]), pairs=pairs, source="toy")
    return pset


@pytest.fixture(scope="session")
def toy_prefs(state_store, tmp_path_factory):
    return make_toy_prefs(state_store, tmp_path_factory.mktemp("prefs") / "toy")
