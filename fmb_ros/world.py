"""`WorldMirror`: the robot as a skill node sees it through its topics, shaped like `sim.FmbEnv`.

Controllers (scripted experts, `policies.runtime.runner.PolicyRunner`; `sim.contracts.Controller`) act on a
world (`sim.contracts.ControllerWorld`) through `reset(env)` / `act(env)`; a policy runner reads
only `env.last_observation`, an expert also reads privileged state (`object_pose`, `episode.info`).
The mirror offers the same attributes, filled by the node's subscriptions: observations from the
robot's topics, privileged state from the simulator's `ground_truth/*` topics (absent on a real
robot, where only policies can run).

Arrays follow the observation schema (`sim.observation`): tcp_pose (7,) [m, xyzw], tcp_vel (6,),
wrench (6,) [N, N m], q, dq (7,), gripper (1,) [m], points (N, 6), rgb/<cam> (H, W, 3) uint8,
depth/<cam> (H, W) float32 [m].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fmb_ros.exceptions import RosError
from sim import observation


@dataclasses.dataclass
class EpisodeFacts:
    """The part of `sim.tasks.base.EpisodeStart` a controller reads: the JSON-ready `info` dict."""

    info: dict = dataclasses.field(default_factory=dict)


class WorldMirror:
    """See module docstring. Not thread-safe: update and read it from one callback group."""

    def __init__(self):
        self.tcp: np.ndarray | None = None
        self.stamp: float | None = None
        """Time of the newest TCP pose [s] (the observation's time, for the watchdog)."""
        self.twist = np.zeros(6)
        self.wrench = np.zeros(6)
        self.q = np.zeros(7)
        self.dq = np.zeros(7)
        self.gripper = 0.0
        self.arrays: dict[str, np.ndarray] = {}
        """Optional observation entries ("points", "rgb/<cam>", "depth/<cam>")."""
        self.objects: dict[str, np.ndarray] = {}
        self._episode = EpisodeFacts()
        self.kinematics = None
        """A `fmb_ros.kinematics.PandaKinematics` for experts that plan with inverse kinematics."""
        self.q_rest: np.ndarray | None = None
        self.perceived: dict[str, np.ndarray] = {}
        """Poses (7,) [m, xyzw] from perception (`target`: the skill's target_topic), for controllers
        that condition on sub-goals (GravMap)."""

    # -- updates (from subscriptions) ------------------------------------------------------------
    def set_tcp(self, pose, stamp: float) -> None:
        self.tcp = np.asarray(pose, float).copy()
        self.stamp = float(stamp)

    def set_episode(self, info: dict) -> None:
        self._episode = EpisodeFacts(dict(info))

    def set_objects(self, keys, poses) -> None:
        """Privileged object poses: `keys` (K,) names and `poses` (K, 7)."""
        poses = np.asarray(poses, float).reshape(-1, 7)
        if len(keys) != len(poses):
            raise RosError(f"ground truth has {len(poses)} poses for {len(keys)} object keys {list(keys)}")
        self.objects = {k: p.copy() for k, p in zip(keys, poses)}

    # -- what controllers read (the FmbEnv surface) ----------------------------------------------
    @property
    def last_observation(self) -> dict | None:
        if self.tcp is None:
            return None
        obs = observation.proprioception(self.tcp, self.twist, self.wrench, self.q, self.dq, self.gripper)
        obs.update(self.arrays)
        return obs

    @property
    def episode(self) -> EpisodeFacts:
        return self._episode

    @property
    def has_ground_truth(self) -> bool:
        return bool(self._episode.info) and bool(self.objects)

    def tcp_pose(self) -> np.ndarray:
        if self.tcp is None:
            raise RosError("no TCP pose received yet")
        return self.tcp.copy()

    def gripper_width(self) -> float:
        return float(self.gripper)

    def object_pose(self, key: str) -> np.ndarray:
        if key not in self.objects:
            raise RosError(
                f"no ground-truth pose of object {key!r} (have: {', '.join(self.objects) or 'none'}); "
                "scripted experts need the simulator's ground_truth topics"
            )
        return self.objects[key].copy()

    def joint_positions(self) -> np.ndarray:
        return self.q.copy()

    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        from sim import panda

        return panda.arm_joint_limits()

    def inverse_kinematics(self, tcp_pose, margin: float = 0.1, seed=None):
        """Arm joints [rad] reaching `tcp_pose` (7,), or None (as FmbEnv); needs `kinematics`."""
        if self.kinematics is None:
            raise RosError("this expert plans with inverse kinematics, and the skill node has no kinematic model")
        start = self.q if seed is None else np.asarray(seed, float)
        return self.kinematics.inverse(tcp_pose, start, q_rest=self.q_rest, margin=margin)

    def mark_rest(self) -> None:
        """Take the current joints as the null-space posture for inverse kinematics (at a goal's start,
        as the simulator takes the episode's start posture)."""
        self.q_rest = self.q.copy()


TARGET_OBJECTS = {"grasp": "peg"}
"""Skill -> the object whose pose a perceived target (`perceived["target"]`) is: a grasp's target is
the peg to grasp (e.g. `/fmb_perception/peg_pose`)."""


class SceneView:
    """The `sim.FmbEnv` surface that a runner's `reset` reads to build GravMap sub-goals
    (`policies.gravmap.subgoals.privileged_subgoals`: task name, episode info and objects, object
    poses, TCP pose), over poses the caller chooses: the simulator's ground truth or perception's.

    Args:
        task: the skill (a key of `policies.gravmap.subgoals.SUBGOAL_SOURCES`).
        info: episode facts with "targets" (a goal from the goal message is already in it).
        poses: object key -> (7,) pose [m, xyzw] in the base frame.
        tcp: (7,) TCP pose.
    """

    def __init__(self, task: str, info: dict, poses: dict, tcp):
        from types import SimpleNamespace

        self.task = SimpleNamespace(name=task)
        self.poses = {k: np.asarray(v, float) for k, v in poses.items()}
        self.episode = SimpleNamespace(info=info, objects=[SimpleNamespace(key=k) for k in self.poses])
        self._tcp = np.asarray(tcp, float)

    @classmethod
    def of(cls, world: WorldMirror, skill: str, info: dict) -> SceneView:
        """The view of `world` for `skill`: ground-truth object poses when they arrived, else the
        perceived ones (a perceived target also under the key of the object it is, TARGET_OBJECTS)."""
        if world.has_ground_truth:
            poses = dict(world.objects)
        else:
            poses = dict(world.perceived)
            if "target" in poses and skill in TARGET_OBJECTS:
                poses.setdefault(TARGET_OBJECTS[skill], poses["target"])
        return cls(skill, info, poses, world.tcp_pose())

    def check_subgoals(self) -> None:
        """Build the sub-goals once (as the runner's reset will), raising RosError that names what
        is missing: the skill has no sub-goal source, or a pose or task fact is not there."""
        from policies.gravmap.subgoals import SUBGOAL_SOURCES

        task, info = self.task.name, self.episode.info
        if task not in SUBGOAL_SOURCES:
            raise RosError(f"no GravMap sub-goals for skill {task!r} (known: {', '.join(sorted(SUBGOAL_SOURCES))})")
        try:
            SUBGOAL_SOURCES[task](info, self.poses, self._tcp)
        except KeyError as e:
            have = ", ".join(sorted(info.get("targets", {}))) or "none"
            raise RosError(
                f"GravMap sub-goals for {task} need the task fact {e.args[0]!r}, which neither the simulator's "
                f"episode facts nor the goal gave (targets: {have}; poses: {', '.join(self.poses) or 'none'})"
            ) from None

    def object_pose(self, key: str) -> np.ndarray:
        if key not in self.poses:
            raise RosError(f"no pose of object {key!r} for GravMap sub-goals (have: {', '.join(self.poses) or 'none'})")
        return self.poses[key].copy()

    def tcp_pose(self) -> np.ndarray:
        return self._tcp.copy()
