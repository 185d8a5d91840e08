"""Controllers for chains: one controller per stage, switched when the chain task moves to the next
stage (`sim.tasks.chain`). A stage's controller sees the environment through a `StageEnv`, whose
`episode` is its stage's (its own facts and targets, those fixed at the stage's start included),
so a skill's expert or policy runs in a chain exactly as in its own task.

    ChainController({"grasp": runner, "rotate": expert, "insert": runner}, ("grasp", "rotate", "insert"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fmb_core.errors import ParameterError
from sim.experts.base import EXPERTS, Expert, YawTurn, near, register_expert, servo
from sim.tasks.chain import stage_view


class StageEnv:
    """The environment as stage `index` of a chain sees it."""

    def __init__(self, env, index: int):
        self._env = env
        self._index = index

    @property
    def episode(self):
        return stage_view(self._env.episode, self._index)

    def __getattr__(self, name):
        return getattr(self._env, name)


class ChainController:
    """A `sim.contracts.Controller` for a chain task: `controllers[skill]` runs while the chain's
    stage is `skill` (`stages`, the chain's stage names in order), reset when its stage begins.

    `rng` (set per episode by the evaluators) is handed to every stage controller that draws from
    one. `attempts` (stage -> attempts begun) counts the current episode's.

    Args:
        approach: stages whose controller takes over only after a planned move towards the goal
            it was reset with (`goal_pose`: the simulator's or perception's; an expert's stage
            target "tcp_goal"), as a robot's motion planner makes the moves a skill is not about;
            the skill then starts where its single-skill task starts. Insert: the held peg moved
            straight to APPROACH_HOVER above its hole (`hover_pose`). Rotate: when turning the
            short way would take joint 7 to its limit, the hand turns the long way round until
            the goal is within `YawTurn.NEAR` (`WristTurn`), so that the skill only ever turns
            the short way, as in its task. Their steps do not count towards an attempt's limit.
        retreat: stages (regrasp) before which the open hand backs away from what it let go of
            and rises to RETREAT (`retreat_path`), as a robot clears its cameras' view before it
            looks; only then is the stage's controller reset (a policy perceives its goal), from
            where the single-skill task starts. Its steps do not count towards an attempt's limit.
        attempts: 0 = a stage runs until it succeeds or the chain's step limit ends the episode;
            N >= 1 = as the ROS task executor runs a stage: each attempt gets the step limit of the
            stage's own task (`sim.tasks.step_limit`), after which the stage's controller is reset
            (a policy re-perceives its goal) for the next attempt, and after N attempts the episode
            ends as a failure at that stage (`sim.exceptions.EpisodeAborted`).
    """

    def __init__(
        self,
        controllers: Mapping[str, object],
        stages: Sequence[str],
        attempts: int = 0,
        approach: Sequence[str] = (),
        retreat: Sequence[str] = (),
    ):
        from fmb_core.errors import check_range

        missing = [s for s in stages if s not in controllers]
        if missing:
            raise ParameterError(f"no controller for stage(s) {', '.join(missing)} of the chain {' -> '.join(stages)}")
        self.controllers = dict(controllers)
        self.stages = tuple(stages)
        self.max_attempts = int(check_range("attempts", attempts, 0, 100))
        for name, planned in (("approach", approach), ("retreat", retreat)):
            unknown = [a for a in planned if a not in stages]
            if unknown:
                raise ParameterError(f"{name}: {', '.join(unknown)} is not a stage of {' -> '.join(stages)}")
        self.approach = tuple(approach)
        self.retreat = tuple(retreat)
        self.waypoints: list[np.ndarray] = []  # the retreat's, while it moves
        self.retreat_steps = self.retreat_total = 0
        self.moving: PlannedApproach | None = None  # the stage's approach while it moves
        self.approach_steps = 0
        self.planning = False  # whether the last action was a planned move, not the skill's
        self.index = -1
        self.attempts: dict[str, int] = {}
        self.steps_in_attempt = 0
        self._rng = np.random.default_rng(0)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    @rng.setter
    def rng(self, rng: np.random.Generator) -> None:
        self._rng = rng
        for controller in getattr(self, "controllers", {}).values():
            if hasattr(controller, "rng"):
                controller.rng = rng

    def reset(self, env) -> None:
        self.index = -1
        self.attempts = {}
        self.steps_in_attempt = 0
        self.moving = None
        self.approach_steps = 0
        self.planning = False
        self.waypoints = []
        self.retreat_steps = self.retreat_total = 0

    def act(self, env) -> np.ndarray:
        action = self._act(env)
        self.planning = self._planned
        return action

    def _act(self, env) -> np.ndarray:
        from sim.exceptions import EpisodeAborted
        from sim.tasks import step_limit

        self._planned = True
        index = int(env.episode.info["stage"])
        stage = self.stages[index]
        controller = self.controllers[stage]
        view = StageEnv(env, index)
        if index != self.index or (self.max_attempts and self.steps_in_attempt >= step_limit(stage)):
            if index == self.index and self.attempts[stage] >= self.max_attempts:
                raise EpisodeAborted(
                    f"stage {stage}: no success in {self.attempts[stage]} attempt(s) of {step_limit(stage)} steps"
                )
            new_stage = index != self.index
            self.index = index
            self.attempts[stage] = self.attempts.get(stage, 0) + 1
            self.steps_in_attempt = 0
            self.begin_attempt(env)
            if new_stage and stage in self.retreat:
                self.waypoints = retreat_path(env.tcp_pose())
            else:
                self._start(controller, view, stage)
        if self.waypoints:
            tcp = env.tcp_pose()
            if near(tcp, self.waypoints[0], RETREAT_REACHED, np.radians(3.0)) or self.retreat_steps >= RETREAT_STEPS:
                self.waypoints.pop(0)
                self.retreat_steps = 0
            if self.waypoints:
                self.retreat_steps += 1
                self.retreat_total += 1
                return servo(tcp, self.waypoints[0], False, RETREAT_SPEED, np.radians(15.0))
            self._start(controller, view, stage)  # the view is clear: the stage's controller looks now
        if self.moving is not None:
            action = self.moving.act(env)
            if action is not None:
                self.approach_steps += 1
                return action
            self.moving = None  # arrived: the stage's controller acts from here
        self._planned = False
        self.steps_in_attempt += 1
        return controller.act(view)

    def _start(self, controller, view: StageEnv, stage: str) -> None:
        """Reset the stage's controller (a policy perceives its goal) and plan its approach."""
        controller.reset(view)
        if stage in self.approach:
            self.moving = PlannedApproach.plan(view, stage, approach_goal(controller, view))

    def begin_attempt(self, env) -> None:
        """Called before a stage's controller is reset for an attempt (subclasses' hook)."""

    def episode_report(self) -> dict:
        """The episode's attempts per stage begun (with `attempts` >= 1: retries counted) and the
        steps the planned approach and retreat took (with `approach`, `retreat`)."""
        return {
            "attempts": dict(self.attempts),
            **({"approach_steps": self.approach_steps} if self.approach else {}),
            **({"retreat_steps": self.retreat_total} if self.retreat else {}),
        }


APPROACH_HOVER = 0.04
"""Height [m] of the held peg's tip above its hole's top face where an approach hands over (the
single-skill insert task starts with the tip 20-60 mm above the hole)."""
APPROACH_SPEED = 0.02
"""[m] per step of the approach (the insert expert moves 15-25 mm per step)."""
APPROACH_REACHED = 0.002
"""[m] from the hover pose at which the approach hands over (or after APPROACH_STEPS steps)."""
APPROACH_STEPS = 40

RETREAT = np.array([0.45, 0.15, 0.28])
"""[m] Where a retreat leaves the open hand, pointing down: the centre of the single-skill regrasp
task's start (within 5 cm of it, 25-32 cm up), clear of the side cameras' view of the fixture.
At a regrasp's start the hand is still beside the peg it let go of and hides the fixture from the
cameras (the fixture was then found in pieces and the peg 50-160 mm off on 3 of 3 scenes)."""
RETREAT_BACK = 0.06
"""[m] The hand first backs out along its own axis (away from the peg between its fingers)."""
RETREAT_SPEED = 0.03
"""[m] per step of a retreat."""
RETREAT_REACHED = 0.005
"""[m] from a retreat waypoint at which the next begins (or after RETREAT_STEPS steps)."""
RETREAT_STEPS = 25
RETREATED = ("regrasp",)
"""Chain stages a retreat comes before, for the experts (the demonstrations) and policies alike."""
EXPERT_APPROACHED = ("rotate",)
"""Chain stages the chain experts approach too (the rotate expert's long turns become the
planner's; the insert expert carries the peg itself and its stages are cut, `sim.stages`)."""


def retreat_path(tcp: np.ndarray) -> list[np.ndarray]:
    """(7,) TCP waypoints of a retreat from `tcp` (7,): RETREAT_BACK along the TCP axis, up to
    RETREAT's height, then to RETREAT pointing straight down (hand facing forward)."""
    from sim.spatial import z_axis
    from sim.tasks.geometry import TCP_DOWN

    back = np.asarray(tcp, float).copy()
    back[:3] -= RETREAT_BACK * z_axis(back[3:])
    up = back.copy()
    up[2] = max(up[2], RETREAT[2])
    return [back, up, np.concatenate([RETREAT, TCP_DOWN])]


class WristTurn:
    """The rotate approach: the held peg's long turn about the vertical, planned from the stage's
    `tcp_goal` (the hand turned in place) when the short way lacks joint-limit room
    (`sim.experts.base.YawTurn`); the hand holds its position and grip while it turns
    WRIST_SPEED per step, until the goal is within `YawTurn.NEAR` the short way."""

    def __init__(self, yaw_turn: YawTurn, position: np.ndarray):
        self.yaw_turn = yaw_turn
        self.position = np.asarray(position, float)

    @classmethod
    def plan(cls, env, goal) -> WristTurn | None:
        """The long turn towards `goal` (7,) from `env`'s measured hand, None when the short way
        is fine (or there is no goal)."""
        from sim.spatial import rotation_error

        if goal is None:
            return None
        tcp = env.tcp_pose()
        yaw_turn = YawTurn()
        yaw_turn.plan(env, float(rotation_error(tcp[3:], np.asarray(goal, float)[3:])[2]))
        return None if yaw_turn.remaining is None else cls(yaw_turn, tcp[:3])

    def act(self, env) -> np.ndarray | None:
        """This step's action (7,), None once the rest of the turn goes the short way."""
        remaining = self.yaw_turn.step(env)
        if remaining is None:
            return None
        action = np.zeros(7)
        action[:3] = self.position - env.tcp_pose()[:3]
        action[5] = np.clip(remaining, -WRIST_SPEED, WRIST_SPEED)
        action[6] = 1.0
        return action


WRIST_SPEED = np.radians(12.0)
"""[rad] per step of the rotate approach's long turn (the rotate expert turns 8-14 deg per step)."""


def approach_goal(controller, env) -> np.ndarray | None:
    """(7,) The `tcp_goal` an approach moves towards: the goal the stage's `controller` was reset
    with (`goal_pose`: a policy's, the simulator's or perception's), else, for a scripted expert,
    its stage's target in `env`'s episode facts; None when neither has one."""
    goal = getattr(controller, "goal_pose", None)
    if goal is None:
        goal = env.episode.info.get("targets", {}).get("tcp_goal")
    return None if goal is None else np.asarray(goal, float)


APPROACHED = ("rotate", "insert")
"""Skills a planned approach can come before (`PlannedApproach`)."""


class PlannedApproach:
    """The planned move before a skill takes over, as a robot's motion planner makes the moves a
    skill is not about, so that the skill starts where its single-skill task starts: `fmb eval`'s
    chains (`ChainController(approach=...)`) and the ROS skill server (`approach`) run this one.

    insert: the held peg straight to APPROACH_HOVER above its hole (`hover_pose`), until within
    APPROACH_REACHED or APPROACH_STEPS steps. rotate: when the short turn would take joint 7 to
    its limit, the long way round until the goal is within `YawTurn.NEAR` (`WristTurn`).

        move = PlannedApproach.plan(env, "insert", tcp_goal)   # None: nothing to move
        action = move.act(env)                                 # each step; None once arrived
    """

    def __init__(self, hover: np.ndarray | None = None, wrist: WristTurn | None = None):
        self.hover = hover
        self.wrist = wrist
        self.steps = 0

    @classmethod
    def plan(cls, env, skill: str, goal) -> PlannedApproach | None:
        """The approach before `skill` (of APPROACHED) towards its `tcp_goal` `goal` (7,) from
        `env`'s measured hand (an FmbEnv or a robot's world mirror: `tcp_pose`, and for rotate
        `joint_positions`, `joint_limits`, `inverse_kinematics`); None when there is nothing to
        move (a rotate the short way). ParameterError for an insert without a goal."""
        if skill not in APPROACHED:
            raise ParameterError(f"no planned approach before {skill!r}; there is one before {', '.join(APPROACHED)}")
        if skill == "rotate":
            wrist = WristTurn.plan(env, goal)
            return None if wrist is None else cls(wrist=wrist)
        return cls(hover=hover_pose(goal, skill))

    def act(self, env) -> np.ndarray | None:
        """This step's action (7,), None once the approach has arrived (and from then on)."""
        if self.hover is not None:
            tcp = env.tcp_pose()
            if near(tcp, self.hover, APPROACH_REACHED, np.radians(2.0)) or self.steps >= APPROACH_STEPS:
                self.hover = None
                return None
            self.steps += 1
            return servo(tcp, self.hover, True, APPROACH_SPEED, np.radians(10.0))
        if self.wrist is not None:
            action = self.wrist.act(env)
            if action is None:
                self.wrist = None  # the rest of the turn is the short way: the skill's
                return None
            self.steps += 1
            return action
        return None


def hover_pose(goal: np.ndarray | None, stage: str) -> np.ndarray:
    """(7,) TCP pose APPROACH_HOVER above the start of the insertion, from the `tcp_goal` pose
    `goal` (the held peg INSERT_DEPTH into the hole): raised along the TCP axis (tip-down, so up)."""
    from sim.spatial import z_axis
    from sim.tasks.skill_goals import INSERT_DEPTH

    if goal is None:
        raise ParameterError(f"approach before {stage}: its controller has no tcp_goal (goal_pose) to approach")
    out = np.asarray(goal, float).copy()
    out[:3] -= (INSERT_DEPTH + APPROACH_HOVER) * z_axis(out[3:])
    return out


class FilteredChainController(ChainController):
    """A ChainController whose every action passes the robot's safety filter, as on a robot
    (`fmb eval --goals perceived`): a stage controller with its own `command` (a policy in the
    robot's loop, `policies.runtime.perceived.RobotLoopRunner`: its goal from perception at the
    stage's start) filters its actions itself; the others (scripted experts) and a retreat's
    moves pass this controller's `sim.safety.SafetyFilter` with `limits`, reset at each stage's start.

    `episode_report()` gathers the stages': "stage_reports" (stage -> its report), and over the
    stages run, the safety verdict totals, the first perception failure, the cameras' hand-eye
    rows and each object's perception error as the latest stage that estimated it measured it.
    """

    def __init__(
        self,
        controllers: Mapping[str, object],
        stages: Sequence[str],
        attempts: int = 0,
        approach: Sequence[str] = (),
        limits=None,
        retreat: Sequence[str] = (),
    ):
        from sim.safety import SafetyLimits

        super().__init__(controllers, stages, attempts, approach, retreat)
        self.limits = limits or SafetyLimits()
        self._new_filter()

    def _new_filter(self) -> None:
        from collections import Counter

        from sim.safety import SafetyFilter

        self.safety = SafetyFilter(self.limits)
        self.verdicts: Counter = Counter()

    def reset(self, env) -> None:
        super().reset(env)
        self._new_filter()

    def begin_attempt(self, env) -> None:
        from sim.safety import SafetyFilter

        self.safety = SafetyFilter(self.limits)  # each attempt starts a new command stream

    def command(self, env, action) -> tuple[np.ndarray, bool]:
        """(safe absolute TCP target (7,) [m, xyzw], close gripper) for the running stage's `action`."""
        controller = self.controllers[self.stages[self.index]]
        if hasattr(controller, "command") and not self.waypoints:  # a retreat's moves are the planner's
            return controller.command(StageEnv(env, self.index), action)
        now = env.steps / env.config.physics.control_hz  # [s]
        cmd = self.safety.filter_action(action, env.tcp_pose(), now, now)
        self.verdicts[cmd.verdict.value] += 1
        return cmd.pose, cmd.close_gripper

    def episode_report(self) -> dict:
        from collections import Counter

        reports = {}
        for name in self.stages[: self.index + 1]:
            report = getattr(self.controllers[name], "episode_report", None)
            if report is not None:
                reports[name] = report()
        safety = Counter(self.verdicts)
        perception: dict = {}
        hand_eye: list = []
        failure = in_hand = ""
        for report in reports.values():
            safety.update(report.get("safety", {}))
            perception.update({k: v for k, v in (report.get("perception") or {}).items() if v is not None})
            hand_eye += report.get("hand_eye") or []
            failure = failure or report.get("perception_failure", "")
            in_hand = report.get("in_hand_source") or in_hand
        return {
            **super().episode_report(),
            "goals": "perceived" if reports else "",
            "in_hand_source": in_hand,
            "perception": perception or None,
            "perception_failure": failure,
            "hand_eye": hand_eye,
            "safety": dict(sorted(safety.items())),
            "stage_reports": reports,
        }


class ChainExpert(ChainController, Expert):
    """Each stage's scripted expert in turn (fresh experts every episode)."""

    stages: tuple[str, ...] = ()

    def __init__(self, noise: float = 1.0, rng: np.random.Generator | None = None, modes: str = "nearest"):
        retreat = tuple(s for s in RETREATED if s in self.stages)
        approach = tuple(s for s in EXPERT_APPROACHED if s in self.stages)
        ChainController.__init__(self, self._experts(noise, rng), self.stages, approach=approach, retreat=retreat)
        Expert.__init__(self, noise, rng, modes)

    def _experts(self, noise: float, rng) -> dict:
        return {name: EXPERTS[name](noise=noise, rng=rng) for name in self.stages}

    def reset(self, env) -> None:
        self.controllers = self._experts(self.noise, self.rng)
        ChainController.reset(self, env)


@register_expert
class VerticalChainExpert(ChainExpert):
    task = "vertical_chain"
    stages = ("grasp", "rotate", "insert")


@register_expert
class HorizontalChainExpert(ChainExpert):
    task = "horizontal_chain"
    stages = ("grasp", "place_on_fixture", "regrasp", "insert")
