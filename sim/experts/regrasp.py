"""Scripted regrasp: the grasp expert's open / approach / descend / close / lift, applied to a peg
standing in the fixture (the lift clears the fixture's walls)."""

from __future__ import annotations

from sim.experts.base import register_expert
from sim.experts.grasp import GraspExpert


@register_expert
class RegraspExpert(GraspExpert):
    task = "regrasp"

    def reset(self, env) -> None:
        super().reset(env)
        self.lift = 0.12 + 0.02 * min(self.noise, 1.0) * self.rng.uniform(-1, 1)
