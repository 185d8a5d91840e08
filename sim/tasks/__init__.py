"""Tasks: FMB's primitives and chains, each with a written-down success check."""

from sim.tasks.assembly import AssembleTask
from sim.tasks.base import TASKS, EpisodeStart, Evaluation, Task, WorldView, register_task, step_limit
from sim.tasks.chain import HorizontalChain, VerticalChain
from sim.tasks.grasp import GraspTask
from sim.tasks.insert import InsertTask
from sim.tasks.place import PlaceTask
from sim.tasks.regrasp import RegraspTask
from sim.tasks.rotate import RotateTask

__all__ = [
    "AssembleTask",
    "TASKS",
    "EpisodeStart",
    "Evaluation",
    "GraspTask",
    "HorizontalChain",
    "InsertTask",
    "PlaceTask",
    "RegraspTask",
    "RotateTask",
    "Task",
    "VerticalChain",
    "WorldView",
    "register_task",
    "step_limit",
]
