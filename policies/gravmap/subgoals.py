"""Run-time sub-goals from the scene (not from demonstrations): the task specification plus object
poses give the TCP positions the skill must pass through, and a tracker hands the policy the
current one, advancing when the TCP reaches it.

Poses come in as plain arrays, so the source of a pose is the caller's choice: in simulation the
privileged ground truth (`privileged_subgoals`, an upper bound), on a robot a perception estimate
(e.g. CAD registration on the point cloud) passed to `SUBGOAL_SOURCES[task](info, poses, tcp)`.

Sub-goal sources (TCP positions, base frame):
    insert  1. above the hole: the held peg aligned with the hole, its tip 10 mm above the top
               face (where the scripted expert aligns); gripper closed
            2. in the hole: the peg at its inserted pose; gripper closed
    grasp   1. 8 cm above the grasp pose, open; 2. the grasp pose, closed; 3. 10 cm above it, closed
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from fmb_core.errors import ParameterError, check_choice, check_range
from sim.spatial import compose, inverse, z_axis
from sim.tasks.geometry import nearest_fitting_goal

HOVER = 0.01
"""Peg tip above the board's top face at the 'above the hole' sub-goal [m] (as the insert expert)."""
PRE_GRASP = 0.08
LIFT = 0.10
"""Heights above the grasp pose of the pre-grasp and lift sub-goals [m]."""


class Subgoal(NamedTuple):
    """A TCP position [m] (3,), base frame, with a gripper openness in [0, 1] (1 = open)."""

    position: np.ndarray
    openness: float
    name: str

    def vector(self) -> np.ndarray:
        """(4,) position + openness (the observation's `subgoal` entry)."""
        return np.r_[self.position, self.openness]


SubgoalSource = Callable[[dict, dict, np.ndarray], list[Subgoal]]
"""(episode info with "targets", object poses {key: (7,)}, TCP pose (7,)) -> sub-goals in order."""
SUBGOAL_SOURCES: dict[str, SubgoalSource] = {}


def register_source(task: str):
    def deco(fn):
        SUBGOAL_SOURCES[task] = fn
        return fn

    return deco


def _pose(poses: dict, key: str) -> np.ndarray:
    if key not in poses:
        raise ParameterError(f"sub-goals need the pose of {key!r}; given: {', '.join(sorted(poses)) or 'none'}")
    p = np.asarray(poses[key], float)
    if p.shape != (7,):
        raise ParameterError(f"pose of {key!r} must be (7,) position + xyzw, got shape {p.shape}")
    return p


@register_source("insert")
def insert_subgoals(info: dict, poses: dict, tcp_pose: np.ndarray) -> list[Subgoal]:
    """Above the hole, then in it (see module docstring). Needs targets "hole" and "peg_goal" and
    the held peg's pose `poses["peg"]` (how it sits in the hand)."""
    from cad.fmb_reference import LENGTHS

    hole = np.asarray(info["targets"]["hole"], float)
    peg = _pose(poses, "peg")
    goal = nearest_fitting_goal(info, np.asarray(info["targets"]["peg_goal"], float), hole, peg)
    peg_in_tcp = compose(inverse(np.asarray(tcp_pose, float)), peg)
    axis = z_axis(hole[3:])
    goal_tip = goal[:3] + LENGTHS[info["length"]] * z_axis(goal[3:])
    above = goal.copy()
    above[:3] = goal[:3] + axis * ((hole[:3] - goal_tip) @ axis + HOVER)
    tcp_of = lambda peg_pose: compose(peg_pose, inverse(peg_in_tcp))[:3]  # noqa: E731
    return [Subgoal(tcp_of(above), 0.0, "above hole"), Subgoal(tcp_of(goal), 0.0, "in hole")]


@register_source("grasp")
def grasp_subgoals(info: dict, poses: dict, tcp_pose: np.ndarray) -> list[Subgoal]:
    """Pre-grasp (open), grasp (closed), lifted (closed) over the peg at `poses["peg"]`."""
    grasp = compose(_pose(poses, "peg"), np.asarray(info["targets"]["grasp_in_peg"], float))[:3]
    up = np.array([0.0, 0.0, 1.0])
    return [
        Subgoal(grasp + PRE_GRASP * up, 1.0, "pre-grasp"),
        Subgoal(grasp, 0.0, "grasp"),
        Subgoal(grasp + LIFT * up, 0.0, "lift"),
    ]


def privileged_subgoals(env) -> list[Subgoal]:
    """Sub-goals of the environment's current episode from ground-truth poses (an upper bound)."""
    task = env.task.name
    check_choice("sub-goal task", task, SUBGOAL_SOURCES)
    poses = {o.key: env.object_pose(o.key) for o in env.episode.objects}
    return SUBGOAL_SOURCES[task](env.episode.info, poses, env.tcp_pose())


PERCEIVED_GOALS = {"insert": ("tcp_goal",), "grasp": ("grasp",)}
"""Task -> the perceived goals (`sim.perceived_goals`) whose poses its sub-goals are built from."""
PLAN_FACTS = ("grasp_in_peg",)
"""Task targets that are plans (where to hold a part), not object poses: kept from the episode."""


def perceived_subgoals(task: str, info: dict, goals, tcp_pose: np.ndarray) -> list[Subgoal]:
    """Sub-goals from perception, as a robot builds them: `goals` (`sim.perceived_goals.
    PerceivedGoals` of the keys PERCEIVED_GOALS[task], made with the TCP at the measured
    `tcp_pose` (7,)) give the hole, the inserted peg pose and the held peg (insert) or the peg
    (grasp); of the episode's `info` only the part's facts and the grasp plan are read, never its
    ground-truth targets."""
    check_choice("sub-goal task", task, PERCEIVED_GOALS)
    missing = [k for k in PERCEIVED_GOALS[task] if k not in goals.targets]
    if missing:
        raise ParameterError(f"perceived {task} sub-goals need the goal(s) {', '.join(missing)}: {goals.failure}")
    poses = dict(goals.poses or {})
    plan = {k: v for k, v in info.get("targets", {}).items() if k in PLAN_FACTS}
    if task == "insert":
        plan |= {"hole": goals.estimate.target_hole, "peg_goal": poses["peg_goal"]}
    return SUBGOAL_SOURCES[task]({**info, "targets": plan}, poses, np.asarray(tcp_pose, float))


class SubgoalTracker:
    """Hands out the current sub-goal; moves to the next when the TCP comes within `tolerance` of
    it, or has passed it: is nearer the next sub-goal than the current one is (less `tolerance`),
    so that a hand that skirts a sub-goal by a few millimetres is not called back to it.

    Args:
        subgoals: in order (at least one).
        tolerance: distance at which a sub-goal counts as reached [m].
    """

    def __init__(self, subgoals: list[Subgoal], tolerance: float = 0.004):
        if not subgoals:
            raise ParameterError("a sub-goal tracker needs at least one sub-goal")
        self.subgoals = list(subgoals)
        self.tolerance = check_range("subgoal tolerance", tolerance, 0.0, 1.0, "m")
        self.index = 0

    @property
    def current(self) -> Subgoal:
        return self.subgoals[self.index]

    def update(self, tcp_position: np.ndarray) -> Subgoal:
        """The sub-goal for a TCP at `tcp_position` (3,) [m], after advancing past reached ones."""
        p = np.asarray(tcp_position, float)[:3]
        while self.index < len(self.subgoals) - 1:
            here, after = self.current.position, self.subgoals[self.index + 1].position
            reached = np.linalg.norm(p - here) <= self.tolerance
            passed = np.linalg.norm(p - after) < np.linalg.norm(here - after) - self.tolerance
            if not (reached or passed):
                break
            self.index += 1
        return self.current
