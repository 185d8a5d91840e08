"""The contract of a conditioner: an input a policy is conditioned on beyond its observations.

    conditioners = conditioners_of(config)              # policies.conditioners: the enabled ones
    for c in conditioners:
        c.check_data(keys)                              # the store has what it needs
        feats[c.batch_key] = c.episode_inputs(store, index, data)   # (T, d) training inputs
        out[c.batch_key] = c.observation_inputs(obs)[None]           # (d,) at run time
        token = c.encoder(feature_dim)(batch[c.batch_key])           # torch: (B, feature_dim)

A policy config enables conditioners by name (`PolicyConfig.conditioners`); the registry
`policies.conditioners.CONDITIONERS` maps names to classes. The dataset, the observation encoder,
the denoiser, `Policy` and the runners ask the enabled conditioners instead of testing for one by
name: a new conditioner is one class and one registry entry. GravMap
(`policies.gravmap.conditioner`) is the first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np


class Conditioner(ABC):
    """One enabled conditioner of a policy (built from its config; see module docstring).

    Class attributes:
        name: its registry name (what `PolicyConfig.conditioners` lists).
        batch_key: the key of its inputs in training windows, model batches and observations.
        data_keys: episode store keys its training inputs are computed from.
        needs_subgoals: runners must track the task's sub-goals for it (and put them in the
            observation under `batch_key` before the policy sees it).
        action_channels: the action channels its branch of the denoiser may correct (the
            position xyz and the gripper for GravMap); () = all of them.
    """

    name: ClassVar[str] = ""
    batch_key: ClassVar[str] = ""
    data_keys: ClassVar[tuple[str, ...]] = ()
    needs_subgoals: ClassVar[bool] = False
    action_channels: ClassVar[tuple[int, ...]] = ()

    def __init__(self, config):
        self.config = config

    def check_data(self, keys: set[str]) -> None:
        """ParameterError (naming `--<name>`) when episode store `keys` lack its `data_keys`."""
        from fmb_core.errors import ParameterError

        missing = [k for k in self.data_keys if k not in keys]
        if missing:
            needs = ", ".join(repr(k) for k in missing)
            raise ParameterError(f"--{self.name}: its inputs are made from {needs}, which the data does not have")

    @abstractmethod
    def episode_inputs(self, store, index: int, data: dict) -> np.ndarray:
        """(T, d) float32 inputs of one training episode (`store` episode `index`, its loaded
        `data` holding at least `data_keys`)."""

    @abstractmethod
    def observation_inputs(self, obs: dict) -> np.ndarray:
        """(d,) float32 inputs at run time from the newest observation `obs`; ParameterError when
        `obs` lacks what they are made of."""

    @abstractmethod
    def encoder(self, feature_dim: int):
        """A torch module mapping inputs (B, d) to a token (B, feature_dim)."""
