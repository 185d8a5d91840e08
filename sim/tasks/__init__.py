"""Tasks: FMB's primitives and chains, each with a written-down success check."""

from sim.tasks.base import TASKS, EpisodeStart, Evaluation, Task, WorldView, register_task
from sim.tasks.grasp import GraspTask
from sim.tasks.insert import InsertTask
from sim.tasks.place import PlaceTask
from sim.tasks.regrasp import RegraspTask
from sim.tasks.rotate import RotateTask

__all__ = [
    "TASKS",
    "EpisodeStart",
    "Evaluation",
    "GraspTask",
    "InsertTask",
    "PlaceTask",
    "RegraspTask",
    "RotateTask",
    "Task",
    "WorldView",
    "register_task",
]
