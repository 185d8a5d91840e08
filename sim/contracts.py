"""The contracts between the world and what acts in it, as Protocols (checked by tests/test_contracts.py).

- `ControllerWorld`: what a controller reads. Implemented by the simulator (`sim.env.FmbEnv`), by
  the ROS mirror of a real or simulated robot (`fmb_ros.world.WorldMirror`) and by the scene view a
  skill server builds for GravMap's sub-goals (`fmb_ros.world.SceneView`).
- `Controller`: what `sim.rollout.run_episode` and the skill servers drive, once per 10 Hz step:
  the scripted experts (`sim.experts`), `policies.runtime.runner.PolicyRunner` and its wrappers
  (`policies.runtime.perceived.RobotLoopRunner`, `policies.runtime.async_runner.AsyncPolicyRunner`).
- `GoalConditioned`: a controller that is handed its goal and GravMap sub-goals by the caller. Its
  `goal_key` and `needs_subgoals` say what it needs; `reset(world, goal=..., subgoals=...)` gives
  them. A goal left out is the simulator's own target (`--goals truth`, an upper bound); sub-goals
  left out are computed from the world's object poses.

The tasks' read-only world (`sim.tasks.base.WorldView`) is the judge's side of the same world.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EpisodeFacts(Protocol):
    """The facts of the running episode: `info` holds the task's JSON-ready facts (peg part and
    family, target hole, targets by name as (7,) poses [m, xyzw])."""

    info: dict


@runtime_checkable
class ControllerWorld(Protocol):
    """What a controller may read about the world (see the module docstring)."""

    episode: Any  # EpisodeFacts of the running episode (None before the first reset)
    last_observation: dict | None  # the newest observation (sim.observation keys), None before one

    def tcp_pose(self) -> np.ndarray: ...  # (7,) measured TCP pose in the base frame [m, xyzw]

    def gripper_width(self) -> float: ...  # [m]


@runtime_checkable
class Controller(Protocol):
    """Acts once per control step: `reset` at the episode's (or skill's) start, then `act`."""

    def reset(self, env) -> None: ...

    def act(self, env) -> np.ndarray | None: ...  # (7,) delta action, or None: hold (a late chunk)


@runtime_checkable
class GoalConditioned(Controller, Protocol):
    """A controller whose inputs include the skill's goal and, for GravMap, its sub-goals."""

    @property
    def goal_key(self) -> str: ...  # the task target it conditions on ("tcp_goal", "grasp"; "" none)

    @property
    def needs_subgoals(self) -> bool: ...  # a GravMap policy, or guided by sub-goals

    def reset(self, env, goal: np.ndarray | None = None, subgoals: Sequence | None = None) -> None: ...
