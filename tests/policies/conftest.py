"""Shared fixtures: real demonstrations from the scripted expert, tiny policy configs."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("torch", reason="policies need the 'learn' extra (torch)")

from policies.config import PRESETS, PolicyConfig, TrainConfig  # noqa: E402
from sim.collect import RunSpec, collect  # noqa: E402


def tiny(**overrides) -> PolicyConfig:
    """The `tiny` preset with short horizons: trains in seconds on a CPU."""
    base = dict(PRESETS["tiny"]["policy"], obs_horizon=2, pred_horizon=8, action_horizon=4, points=32)
    return PolicyConfig(**{**base, **overrides})


def tiny_training(**overrides) -> TrainConfig:
    return dataclasses.replace(
        TrainConfig(steps=20, batch_size=16, lr=3e-3, warmup_steps=2, checkpoint_every=10, log_every=5, device="cpu"),
        **overrides,
    )


@pytest.fixture(scope="session")
def state_store(tmp_path_factory):
    """Three insertion demonstrations (rectangle pegs), low-dimensional observations only."""
    root = tmp_path_factory.mktemp("demos") / "state"
    collect(RunSpec("insert", families=("rectangle",)), root, episodes=3, progress=False)
    from sim.store import EpisodeStore

    return EpisodeStore.open(root)


@pytest.fixture(scope="session")
def cloud_store(tmp_path_factory):
    """Two insertion demonstrations with a fused point cloud from two small cameras."""
    root = tmp_path_factory.mktemp("demos") / "cloud"
    spec = RunSpec("insert", cameras=("side_1", "wrist"), image_size=(32, 32), point_cloud=256, families=("round",))
    collect(spec, root, episodes=2, progress=False)
    from sim.store import EpisodeStore

    return EpisodeStore.open(root)
