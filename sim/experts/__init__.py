"""Privileged scripted experts: they read object poses from the simulator and act like a policy."""

from sim.experts.assemble import AssembleExpert
from sim.experts.base import EXPERTS, DartExpert, DelayedActions, Expert, make_expert
from sim.experts.chain import HorizontalChainExpert, VerticalChainExpert
from sim.experts.grasp import GraspExpert
from sim.experts.insert import InsertExpert
from sim.experts.place import PlaceExpert
from sim.experts.regrasp import RegraspExpert
from sim.experts.rotate import RotateExpert

__all__ = [
    "AssembleExpert",
    "DartExpert",
    "DelayedActions",
    "EXPERTS",
    "Expert",
    "GraspExpert",
    "HorizontalChainExpert",
    "InsertExpert",
    "PlaceExpert",
    "RegraspExpert",
    "RotateExpert",
    "VerticalChainExpert",
    "make_expert",
]
