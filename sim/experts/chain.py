"""Controllers for chains: one controller per stage, switched when the chain task moves to the next
stage (`sim.tasks.chain`). A stage's controller sees the environment through a `StageEnv`, whose
`episode` is its stage's (its own facts and targets, those fixed at the stage's start included),
so a skill's expert or policy runs in a chain exactly as in its own task.

    ChainController({"grasp": runner, "rotate": expert, "insert": runner}, ("grasp", "rotate", "insert"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fmb_core.errors import ParameterError
from sim.experts.base import EXPERTS, Expert, register_expert
from sim.tasks.chain import stage_view


class StageEnv:
    """The environment as stage `index` of a chain sees it."""

    def __init__(self, env, index: int):
        self._env = env
        self._index = index

    @property
    def episode(self):
        return stage_view(self._env.episode, self._index)

    def __getattr__(self, name):
        return getattr(self._env, name)


class ChainController:
    """A `sim.contracts.Controller` for a chain task: `controllers[skill]` runs while the chain's
    stage is `skill` (`stages`, the chain's stage names in order), reset when its stage begins.

    `rng` (set per episode by the evaluators) is handed to every stage controller that draws from
    one. `stage_resets` counts the stages begun in the current episode.
    """

    def __init__(self, controllers: Mapping[str, object], stages: Sequence[str]):
        missing = [s for s in stages if s not in controllers]
        if missing:
            raise ParameterError(f"no controller for stage(s) {', '.join(missing)} of the chain {' -> '.join(stages)}")
        self.controllers = dict(controllers)
        self.stages = tuple(stages)
        self.index = -1
        self.stage_resets = 0
        self._rng = np.random.default_rng(0)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    @rng.setter
    def rng(self, rng: np.random.Generator) -> None:
        self._rng = rng
        for controller in getattr(self, "controllers", {}).values():
            if hasattr(controller, "rng"):
                controller.rng = rng

    def reset(self, env) -> None:
        self.index = -1
        self.stage_resets = 0

    def act(self, env) -> np.ndarray:
        index = int(env.episode.info["stage"])
        controller = self.controllers[self.stages[index]]
        view = StageEnv(env, index)
        if index != self.index:
            self.index = index
            self.stage_resets += 1
            controller.reset(view)
        return controller.act(view)


class ChainExpert(ChainController, Expert):
    """Each stage's scripted expert in turn (fresh experts every episode)."""

    stages: tuple[str, ...] = ()

    def __init__(self, noise: float = 1.0, rng: np.random.Generator | None = None):
        ChainController.__init__(self, self._experts(noise, rng), self.stages)
        Expert.__init__(self, noise, rng)

    def _experts(self, noise: float, rng) -> dict:
        return {name: EXPERTS[name](noise=noise, rng=rng) for name in self.stages}

    def reset(self, env) -> None:
        self.controllers = self._experts(self.noise, self.rng)
        ChainController.reset(self, env)


@register_expert
class VerticalChainExpert(ChainExpert):
    task = "vertical_chain"
    stages = ("grasp", "rotate", "insert")


@register_expert
class HorizontalChainExpert(ChainExpert):
    task = "horizontal_chain"
    stages = ("grasp", "place_on_fixture", "regrasp", "insert")
