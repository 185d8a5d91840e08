"""The model a policy config names: `build_model(config, shapes)` (`config.policy_type`)."""

from __future__ import annotations

from fmb_core.errors import check_choice
from policies.bc.model import BCModel
from policies.common.model import ActionChunkModel
from policies.config import PolicyConfig
from policies.diffusion.model import DiffusionModel

MODEL_TYPES: dict[str, type[ActionChunkModel]] = {m.name: m for m in (DiffusionModel, BCModel)}
"""policy_type -> model class (one folder per family: policies.diffusion, policies.bc)."""


def build_model(config: PolicyConfig, shapes: dict[str, tuple[int, ...]]) -> ActionChunkModel:
    """The model of `config.policy_type` for data with per-step feature `shapes`."""
    check_choice("policy type", config.policy_type, MODEL_TYPES)
    return MODEL_TYPES[config.policy_type](config, shapes)
