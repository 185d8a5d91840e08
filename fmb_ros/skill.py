"""`SkillExecution`: one skill's goal -> run -> result state machine, without ROS.

    run = SkillExecution("grasp", controller, SafetyFilter(limits), base_frame="panda_link0")
    run.start(goal_pose, "panda_link0", world, now)        # GoalError when the goal is refused
    tick = run.tick(world, now, evaluation)                # at 10 Hz: a command to send (or None)

Each tick (while running): end with success/failure when the judge (`evaluation`, the simulator's
task check; None on a real robot) says so, or at the step limit; else ask the controller for a 7-D
delta action, turn it into an absolute TCP target about the measured pose (as `sim.env.step`), and
pass it through the safety filter. While the filter holds (emergency stop, stale observations) the
controller is not asked, so a scripted expert does not advance its phases on a frozen arm. A
controller that has no action ready (`act` returns None: an asynchronous policy's late chunk, see
`policies.runtime.async_runner`) holds the arm for that tick, which counts as a step (the limit is time).
On success the last command stands; a cancel, a failure or an error holds the arm where it is.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import numpy as np

from fmb_core.errors import FmbError, check_choice
from fmb_ros.exceptions import GoalError
from policies.runtime.controllers import Controller
from sim.contracts import GoalConditioned
from sim.safety import SafeCommand, SafetyFilter, Verdict

POLICY_GOALS = ("auto", "goal")


class State(str, enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ABORTED = "aborted"  # the controller raised; see the message

    @property
    def done(self) -> bool:
        return self not in (State.IDLE, State.RUNNING)


class Tick(NamedTuple):
    """One tick's outcome.

    Attributes:
        command: the safe command to send, or None (nothing to send this tick).
        state: state after the tick.
        changed: the state changed during this tick (send a result).
    """

    command: SafeCommand | None
    state: State
    changed: bool


class SkillExecution:
    """See module docstring.

    Args:
        skill: skill name (for messages).
        controller: what acts (see policies.runtime.controllers).
        safety: the filter every command goes through.
        base_frame: the only frame goals may be given in.
        max_steps: step limit (0 = the controller's).
        policy_goal: where a goal-conditioned policy's goal pose comes from: "auto" (the simulator's
            task target when its ground truth has one, else the goal message) or "goal" (always the
            goal message). The goal message is the skill's target as perception estimates it (insert:
            the target hole's pose; grasp: the peg's), and the policy's goal is built from it as
            `fmb eval --goals perceived` builds it (`sim.perceived_goals.policy_goal`: a `tcp_goal`
            from the hole and the held peg's in-hand pose (`in_hand`), a `grasp` from the peg and the task's
            grasp plan).
        in_hand: where a `tcp_goal`'s in-hand pose comes from (`sim.perceived_goals.PerceivedGoalConfig`'s
            `in_hand`, `in_hand_offset`, `in_hand_angle`; default "checked", as `fmb eval`): the grasp
            command in the task facts or the cameras' estimate given to `start`
            (`fmb_ros.held_peg.in_hand_choice`).
        approach: a planned move before the skill acts (`sim.experts.chain.PlannedApproach`, as
            `fmb eval` runs a chain's learned stages): insert carries the held peg to 40 mm above
            its `tcp_goal`, rotate turns the wrist the long way round where the short way lacks
            joint room; neither counts towards `max_steps` (a move that has not arrived within
            `max_steps` steps fails the skill). For a chain's learned rotate and insert servers.
    """

    def __init__(
        self,
        skill: str,
        controller: Controller,
        safety: SafetyFilter,
        base_frame: str,
        max_steps: int = 0,
        policy_goal: str = "auto",
        in_hand=None,
        approach: bool = False,
    ):
        self.skill = skill
        self.controller = controller
        self.safety = safety
        self.base_frame = base_frame
        self.max_steps = int(max_steps) or controller.max_steps
        self.state = State.IDLE
        self.step = 0
        self.score = math.nan
        self.message = "waiting for a goal"
        self.goal: np.ndarray | None = None
        self.started_at: float | None = None
        self.last_verdict: Verdict | None = None
        self.policy_goal = check_choice("policy_goal", policy_goal, POLICY_GOALS)
        if in_hand is None:
            from sim.perceived_goals import PerceivedGoalConfig

            in_hand = PerceivedGoalConfig()
        self.in_hand = in_hand
        self.approach = bool(approach)
        self.moving = None  # the planned approach while it moves (`PlannedApproach`)
        self.approach_steps = 0
        self.goal_facts: dict = {}
        """What the accepted goal's policy goal was built from (`in_hand_source`, ...; `InHandChoice.facts`)."""

    # -- goal and cancel -------------------------------------------------------------------------
    def start(self, goal_pose, frame_id: str, world, now: float, held=None) -> None:
        """Accept a goal (a (7,) target pose [m, xyzw]) and reset the controller; GoalError if refused.
        `held`: the cameras' estimate of the held peg in the hand (`fmb_ros.held_peg.InHandEstimate`;
        None: none is looked at) for a `tcp_goal` policy's in-hand pose."""
        if self.state is State.RUNNING:
            raise GoalError(f"{self.skill} is already running (step {self.step}); cancel it first")
        if frame_id != self.base_frame:
            raise GoalError(f"goal frame {frame_id!r} is unknown; goals must be in {self.base_frame!r}")
        goal = np.asarray(goal_pose, float)
        if goal.shape != (7,) or not np.all(np.isfinite(goal)) or np.linalg.norm(goal[3:]) < 1e-6:
            raise GoalError(f"goal pose must be 7 finite numbers with a non-zero quaternion, got {goal.tolist()}")
        lim = self.safety.limits
        if not lim.in_workspace(goal[:3]):
            raise GoalError(
                f"goal position {np.round(goal[:3], 4).tolist()} m is outside the workspace "
                f"[{list(lim.workspace_low)}, {list(lim.workspace_high)}] m"
            )
        if world.last_observation is None:
            raise GoalError("no observation of the robot yet (is the robot or simulator running?)")
        if self.controller.privileged and not world.has_ground_truth:
            raise GoalError(
                "the scripted expert needs the simulator's ground truth (ground_truth topics), and none "
                "arrived; set `checkpoint` to run a policy instead"
            )
        if hasattr(world, "mark_rest"):
            world.mark_rest()
        runner = self.controller.runner
        conditioned = isinstance(runner, GoalConditioned)  # a policy runner; a scripted expert is not
        goal_key = runner.goal_key if conditioned else ""
        info = world.episode.info
        policy_goal_pose, facts = None, {}
        if goal_key and (self.policy_goal == "goal" or goal_key not in info.get("targets", {})):
            # the policy's goal from the skill's target, by fmb eval's perceived rule
            from fmb_ros.held_peg import in_hand_choice
            from sim.perceived_goals import policy_goal

            try:
                peg_in_tcp = None
                if goal_key == "tcp_goal":  # the held peg's pose in the hand: commanded or seen
                    peg_in_tcp, _, facts = in_hand_choice(self.in_hand, info, held)
                policy_goal_pose, _ = policy_goal(goal_key, goal, dict(info), world.tcp_pose(), peg_in_tcp)
            except FmbError as e:
                raise GoalError(f"the policy's goal {goal_key!r} cannot be built from the goal pose: {e}") from None
            info = {**info, "targets": {**info.get("targets", {}), goal_key: policy_goal_pose.tolist()}}
        subgoals = None
        if conditioned and runner.needs_subgoals:  # GravMap sub-goals from the scene: ground truth, else perception
            from fmb_ros.world import SceneView
            from policies.gravmap.subgoals import privileged_subgoals

            view = SceneView.of(world, self.skill, info)
            try:
                view.check_subgoals()
            except FmbError as e:
                raise GoalError(str(e)) from None
            subgoals = privileged_subgoals(view)
        try:
            if conditioned:  # goal None: the simulator's target from its episode facts (ground truth)
                runner.reset(world, goal=policy_goal_pose, subgoals=subgoals)
            else:
                runner.reset(world)
        except Exception as e:  # noqa: BLE001 - any controller failure is reported, not raised into ROS
            raise GoalError(f"the controller could not start: {type(e).__name__}: {e}") from None
        self.moving, self.approach_steps = None, 0
        if self.approach:
            from sim.experts.chain import APPROACHED, PlannedApproach, approach_goal

            if self.skill in APPROACHED:
                try:
                    self.moving = PlannedApproach.plan(world, self.skill, approach_goal(runner, world))
                except FmbError as e:
                    raise GoalError(f"the approach before {self.skill} cannot be planned: {e}") from None
        self.goal = goal
        self.goal_facts = facts
        self.started_at = float(now)
        self.state = State.RUNNING
        self.step = 0
        self.score = math.nan
        self.message = f"running {self.controller.description}"

    def cancel(self, world, reason: str = "canceled") -> Tick:
        """Stop a running skill; the tick's command holds the arm where it is. `changed` is False
        when nothing was running."""
        if self.state is not State.RUNNING:
            return Tick(None, self.state, False)
        return self._end(world, State.CANCELED, reason)

    # -- the 10 Hz tick --------------------------------------------------------------------------
    def tick(self, world, now: float, evaluation: dict | None = None) -> Tick:
        """Advance one control period.

        Args:
            world: a WorldMirror (or an FmbEnv).
            now: current time [s] (the observation clock).
            evaluation: the judge's newest verdict {"success": bool, "failed": bool, "progress": float}
                made after the goal started, or None.
        """
        if self.state is not State.RUNNING:
            return Tick(None, self.state, False)
        if evaluation is not None:
            self.score = float(evaluation.get("progress", math.nan))
            if evaluation.get("success"):
                return self._end(world, State.SUCCEEDED, f"success after {self.step} steps")
            if evaluation.get("failed"):
                return self._end(world, State.FAILED, f"the task can no longer succeed (step {self.step})")
        if self.step >= self.max_steps:
            return self._end(world, State.FAILED, f"no success within the step limit ({self.max_steps})")
        measured, stamp = world.tcp, world.stamp
        held = self.safety.check_ready(measured, stamp, now)
        if held is not None:
            self.last_verdict = held.verdict
            self.message = f"holding: {held.reason}"
            return Tick(held, self.state, False)
        if self.moving is not None:  # the planned approach first, through the same filter
            action = self.moving.act(world)
            if action is not None:
                if self.approach_steps >= self.max_steps:
                    return self._end(world, State.FAILED, f"the approach did not arrive in {self.max_steps} steps")
                cmd = self.safety.filter_action(action, measured, stamp, now)
                self.approach_steps += 1
                self.last_verdict = cmd.verdict
                self.message = f"approach before {self.skill}" + (f"; {cmd.reason}" if cmd.reason else "")
                return Tick(cmd, self.state, False)
            self.moving = None  # arrived: the skill acts from here
        try:
            action = self.controller.runner.act(world)
        except Exception as e:  # noqa: BLE001 - a failing controller aborts the skill; the node lives on
            return self._end(world, State.ABORTED, f"controller error at step {self.step}: {type(e).__name__}: {e}")
        if action is None:  # an asynchronous policy's chunk is late: hold, never wait for it
            held = self.safety.hold(measured, Verdict.LATE, "holding: the next action chunk is late")
            self.step += 1
            self.last_verdict = held.verdict
            self.message = held.reason
            return Tick(held, self.state, False)
        cmd = self.safety.filter_action(action, measured, stamp, now)  # the rule of fmb eval's robot loop
        self.step += 1
        self.last_verdict = cmd.verdict
        self.message = f"running {self.controller.description}" + (f"; {cmd.reason}" if cmd.reason else "")
        return Tick(cmd, self.state, False)

    def _end(self, world, state: State, message: str) -> Tick:
        """Finish the run. On success the last command stands (the arm settles where the skill sent
        it: a lift in progress completes its last step); otherwise the arm stops where it is."""
        self.state = state
        self.message = message
        return Tick(None if state is State.SUCCEEDED else self.safety.stay(world.tcp), state, True)


def stage_judgement(evaluation: dict | None, index: int, stages: int) -> dict | None:
    """A chain task's judgement ({"success", "failed", "progress", "stage"}: the chain's progress in
    [0, 1] and its current stage) seen by the skill running stage `index` of `stages`: success once the
    chain has moved past this stage (or, for the last stage, when the chain succeeds); progress is
    this stage's share, rescaled to [0, 1]."""
    if evaluation is None or evaluation.get("stage") is None:
        return evaluation
    stage = int(evaluation["stage"])
    last = index == stages - 1
    done = stage > index or (last and stage == index and bool(evaluation.get("success")))
    progress = min(max(float(evaluation.get("progress", 0.0)) * stages - index, 0.0), 1.0)
    return {"success": done, "failed": bool(evaluation.get("failed")), "progress": 1.0 if done else progress}
