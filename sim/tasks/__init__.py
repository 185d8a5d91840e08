"""Tasks: FMB's primitives and chains, each with a written-down success check."""

from sim.tasks.base import TASKS, EpisodeStart, Evaluation, Task, WorldView, register_task
from sim.tasks.grasp import GraspTask
from sim.tasks.insert import InsertTask
from sim.tasks.rotate import RotateTask

__all__ = [
    "TASKS",
    "EpisodeStart",
    "Evaluation",
    "GraspTask",
    "InsertTask",
    "RotateTask",
    "Task",
    "WorldView",
    "register_task",
]
