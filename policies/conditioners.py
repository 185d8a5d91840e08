"""The registry of policy conditioners (`policies.common.conditioning.Conditioner`).

CONDITIONERS["gravmap"]          # policies.gravmap.conditioner.GravMapConditioner
conditioners_of(config)          # the enabled ones of a PolicyConfig, in its order
"""

from __future__ import annotations

from fmb_core.errors import check_choice
from policies.common.conditioning import Conditioner
from policies.gravmap.conditioner import GravMapConditioner

CONDITIONERS: dict[str, type[Conditioner]] = {c.name: c for c in (GravMapConditioner,)}
"""Conditioner name -> class; a new conditioner is one class and one entry here."""


def conditioners_of(config) -> list[Conditioner]:
    """The conditioners `config.conditioners` names, built from `config` (ParameterError on an
    unknown name, or on settings a conditioner rejects)."""
    for name in config.conditioners:
        check_choice("conditioners", name, tuple(CONDITIONERS))
    return [CONDITIONERS[name](config) for name in config.conditioners]


def needs_subgoals(config) -> bool:
    """Whether a policy of `config` needs the task's sub-goals in its observations."""
    return any(CONDITIONERS[name].needs_subgoals for name in config.conditioners if name in CONDITIONERS)
