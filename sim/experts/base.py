"""The expert contract and registry.

An expert maps the environment's world view (privileged: object poses, task targets) to a 7-D
action in the same space a policy uses. Noise parameters make demonstrations diverse; the same
seed gives the same actions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from typing import ClassVar

import numpy as np
from scipy.spatial.transform import Rotation

from fmb_core.errors import ParameterError, check_range
from sim.exceptions import UnknownNameError
from sim.spatial import rotation_error

EXPERTS: dict[str, type[Expert]] = {}


class Expert(ABC):
    """A scripted policy for one task."""

    task: ClassVar[str] = ""
    MODES: ClassVar[tuple[str, ...]] = ("nearest",)
    """How the expert picks among equivalent ways of doing its task (a star goes into its hole at
    five turns): "nearest", the way nearest the start (every expert), and, where an expert has
    several, "all": one of them at random per episode, for multimodal demonstrations."""

    def __init__(self, noise: float = 1.0, rng: np.random.Generator | None = None, modes: str = "nearest"):
        """Args:
        noise: scale of the action noise and of the randomised choices (0 = deterministic).
        rng: generator for the noise.
        modes: one of MODES.
        """
        if modes not in self.MODES:
            raise ParameterError(
                f"the {self.task or type(self).__name__} expert has no modes {modes!r}; it has: {', '.join(self.MODES)}"
            )
        self.noise = float(noise)
        self.rng = rng or np.random.default_rng(0)
        self.modes = modes

    def reset(self, env) -> None:
        """Called after env.reset(); draw per-episode choices here."""

    @abstractmethod
    def act(self, env) -> np.ndarray:
        """(7,) action for the current state of `env` (an FmbEnv)."""

    def jitter(self, delta: np.ndarray, far: float, translation: float = 0.002, rotation: float = np.radians(1.0)):
        """Add Gaussian noise to `delta` in place: up to `translation` [m] and `rotation` [rad] per
        axis, scaled by the expert's noise and by `far` in [0, 1] (0 near the goal: no noise)."""
        if self.noise > 0:
            delta[:3] += self.rng.normal(0, translation * self.noise * far, 3)
            delta[3:6] += self.rng.normal(0, rotation * self.noise * far, 3)
        return delta


def servo(tcp: np.ndarray, target: np.ndarray, close: bool, limit: float, turn_limit: float | None = None):
    """(7,) action moving the TCP (7,) towards `target` (7,): translation clipped to `limit` [m]
    (same direction), rotation vector clipped to `turn_limit` [rad] when given, gripper `close`."""
    delta = np.zeros(7)
    delta[:3] = target[:3] - tcp[:3]
    delta[3:6] = rotation_error(tcp[3:], target[3:])
    norm = np.linalg.norm(delta[:3])
    if norm > limit:
        delta[:3] *= limit / norm
    if turn_limit is not None:
        size = np.linalg.norm(delta[3:6])
        if size > turn_limit:
            delta[3:6] *= turn_limit / size
    delta[6] = 1.0 if close else 0.0
    return delta


def near(a: np.ndarray, b: np.ndarray, distance: float, angle: float) -> bool:
    """Whether poses `a` and `b` (7,) are within `distance` [m] and `angle` [rad] of each other."""
    return np.linalg.norm(a[:3] - b[:3]) < distance and np.linalg.norm(rotation_error(a[3:], b[3:])) < angle


class YawTurn:
    """A turn of the hand about the vertical that goes the long way round when the short way
    would take the wrist to a joint limit (joint 7 makes such turns, and has about 340 deg).

    `plan(env, angle)` once, with the short-way angle [rad] about the world z axis; then `step(env)`
    each control step: None when the short way is fine (or the long turn is nearly done, so
    the shortest way now goes the same way), else the angle [rad] still to turn, counted from
    the hand's measured heading.
    """

    ROOM = 0.1  # [rad] joint-limit room the short way must keep along the turn
    NEAR = np.radians(60.0)  # turns smaller than this always go the short way

    def __init__(self):
        self.remaining = None
        self.last = 0.0

    @staticmethod
    def heading(quat: np.ndarray) -> float:
        """Angle [rad] of the hand's x axis about the vertical."""
        x = Rotation.from_quat(quat).apply([1.0, 0.0, 0.0])
        return float(np.arctan2(x[1], x[0]))

    @staticmethod
    def room(env, total: float) -> float:
        """Least joint-limit room [rad] along a turn of the hand by `total` [rad] about the vertical
        (inverse kinematics every 0.4 rad, each solution seeding the next), -inf if unreachable."""
        lower, upper = env.joint_limits()
        tcp = env.tcp_pose()
        q, least = env.joint_positions(), np.inf
        for t in np.linspace(0.0, 1.0, int(np.ceil(abs(total) / 0.4)) + 1)[1:]:
            quat = (Rotation.from_rotvec([0.0, 0.0, t * total]) * Rotation.from_quat(tcp[3:])).as_quat()
            q = env.inverse_kinematics(np.concatenate([tcp[:3], quat]), margin=0.0, seed=q)
            if q is None:
                return -np.inf
            least = min(least, float(np.min(np.minimum(q - lower, upper - q))))
        return least

    def plan(self, env, angle: float) -> None:
        self.remaining = None
        if abs(angle) < self.NEAR:
            return
        short = self.room(env, angle)
        if short >= self.ROOM:
            return
        long_way = angle - np.sign(angle) * 2.0 * np.pi
        if self.room(env, long_way) > short:
            self.remaining = long_way
            self.last = self.heading(env.tcp_pose()[3:])

    def step(self, env) -> float | None:
        if self.remaining is None:
            return None
        heading = self.heading(env.tcp_pose()[3:])
        self.remaining -= float(np.angle(np.exp(1j * (heading - self.last))))
        self.last = heading
        if abs(self.remaining) < self.NEAR:
            self.remaining = None
        return self.remaining


class DartExpert:
    """An expert whose executed actions carry Gaussian noise while demonstrations record the
    expert's own action (DART, Laskey et al. 2017).

    The noise pushes the robot just off the expert's path (a peg meeting the chamfer a little off
    the hole's axis, a gripper a millimetre off its grasp) and the recorded labels say how the
    expert recovers from there: states that noise-free demonstrations never visit and a policy
    meets as soon as it errs. The noise is on every step, including the final approaches where
    the expert's own jitter fades out.

    Args:
        expert: the scripted expert (its own noise still shapes the demonstrations).
        scale: noise scale; at 1 the standard deviation is `translation` [m] and `rotation` [rad]
            per axis and step.
    """

    def __init__(self, expert: Expert, scale: float, translation: float = 0.0005, rotation: float = np.radians(0.25)):
        self.expert = expert
        self.sigma = np.array([translation] * 3 + [rotation] * 3) * float(scale)
        self.label: np.ndarray | None = None
        """The expert's action for the last step: what a demonstration records (sim.rollout)."""

    @property
    def task(self) -> str:
        return self.expert.task

    @property
    def rng(self) -> np.random.Generator:
        return self.expert.rng

    @property
    def planning(self) -> bool | None:
        """The wrapped expert's (a chain's planned moves, `sim.rollout` records them), else None."""
        return getattr(self.expert, "planning", None)

    @rng.setter
    def rng(self, rng: np.random.Generator) -> None:  # one generator: the same seed, the same episode
        self.expert.rng = rng

    def reset(self, env) -> None:
        self.label = None
        self.expert.reset(env)

    def episode_report(self) -> dict:
        """The wrapped expert's facts about its episode (e.g. the turn it chose), if it has any."""
        report = getattr(self.expert, "episode_report", None)
        return report() if report is not None else {}

    def act(self, env) -> np.ndarray:
        self.label = np.asarray(self.expert.act(env), dtype=float)
        executed = self.label.copy()
        executed[:6] += self.rng.normal(0.0, self.sigma)
        return executed


class DelayedActions:
    """A controller whose actions reach the arm `steps` control periods late, as over a robot's
    network, driver and controller: at step t it executes what `controller` decided at t - steps
    (the first `steps` steps hold still, the gripper as first decided). `fmb sim expert-eval
    --action-delay N` measures how a scripted expert copes with the latency a real arm adds.

    Args:
        controller: any `sim.contracts.Controller` (its rng, task and planned moves show through).
        steps: control periods of delay (>= 1).
    """

    label = None
    """A demonstration records the delayed action the arm executed (not a DART label)."""

    def __init__(self, controller, steps: int):
        self.controller = controller
        self.steps = int(check_range("action_delay", steps, 1, 100))
        self._queue: deque[np.ndarray] = deque()

    def __getattr__(self, name):  # task, planning, episode_report, ... of the wrapped controller
        controller = self.__dict__.get("controller")
        if controller is None:  # while unpickling, before __init__
            raise AttributeError(name)
        return getattr(controller, name)

    @property
    def rng(self) -> np.random.Generator:
        return self.controller.rng

    @rng.setter
    def rng(self, rng: np.random.Generator) -> None:
        self.controller.rng = rng

    def reset(self, env) -> None:
        self._queue.clear()
        self.controller.reset(env)

    def act(self, env) -> np.ndarray:
        decided = np.asarray(self.controller.act(env), dtype=float)
        self._queue.append(decided)
        if len(self._queue) > self.steps:
            return self._queue.popleft()
        return np.r_[np.zeros(6), self._queue[0][6]]  # nothing has arrived yet: hold still


def register_expert(cls: type[Expert]) -> type[Expert]:
    EXPERTS[cls.task] = cls
    return cls


def make_expert(
    task: str, noise: float = 1.0, seed: int = 0, dart: float = 0.0, action_delay: int = 0, modes: str = "nearest"
) -> Expert | DartExpert | DelayedActions:
    """The expert for `task`, choosing among equivalent ways by `modes` (Expert.MODES); with
    `dart` > 0 wrapped in a DartExpert of that noise scale, with `action_delay` > 0 its actions
    executed that many control periods late (DelayedActions)."""
    if task not in EXPERTS:
        raise UnknownNameError(f"no expert for task {task!r}; experts exist for: {', '.join(sorted(EXPERTS))}")
    expert = EXPERTS[task](noise=noise, rng=np.random.default_rng(seed), modes=modes)
    expert = DartExpert(expert, dart) if dart > 0 else expert
    return DelayedActions(expert, action_delay) if action_delay > 0 else expert
