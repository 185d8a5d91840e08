"""Chain experts: each stage's expert in turn, switched when the chain task moves to the next
stage. A stage expert sees the environment through a view whose `episode` is its stage's."""

from __future__ import annotations

import numpy as np

from sim.experts.base import EXPERTS, Expert, register_expert
from sim.tasks.chain import stage_view


class _StageEnv:
    """The environment as one stage of a chain sees it."""

    def __init__(self, env, index: int):
        self._env = env
        self._index = index

    @property
    def episode(self):
        return stage_view(self._env.episode, self._index)

    def __getattr__(self, name):
        return getattr(self._env, name)


class ChainExpert(Expert):
    stages: tuple[str, ...] = ()

    def reset(self, env) -> None:
        self.experts = [EXPERTS[name](noise=self.noise, rng=self.rng) for name in self.stages]
        self.index = -1

    def act(self, env) -> np.ndarray:
        index = env.episode.info["stage"]
        view = _StageEnv(env, index)
        if index != self.index:
            self.index = index
            self.experts[index].rng = self.rng
            self.experts[index].reset(view)
        return self.experts[index].act(view)


@register_expert
class VerticalChainExpert(ChainExpert):
    task = "vertical_chain"
    stages = ("grasp", "rotate", "insert")


@register_expert
class HorizontalChainExpert(ChainExpert):
    task = "horizontal_chain"
    stages = ("grasp", "place_on_fixture", "regrasp", "insert")
