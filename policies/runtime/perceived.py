"""A policy runner in the robot's loop (`fmb eval --goals perceived`): the goal from perception at
the skill's start, every action through the safety filter.

    runner = RobotLoopRunner(PolicyRunner(policy, ...), PerceivedGoalConfig())
    run_episode(env, runner, seed)          # sim.rollout: steps env.step_pose(*runner.command(...))
    runner.episode_report()                 # goal source, perception errors, verdict counts

At `reset` it renders the side cameras' cloud (each camera's calibration refined on the hand,
`sim.perception.hand_eye`), runs the estimator (`sim.perceived_goals`) and resets
the inner runner with the goal from the estimate, and for GravMap policies or guidance with its
sub-goals (`policies.gravmap.subgoals.perceived_subgoals`); the simulator's object poses are read
only to report perception's error. A goal that cannot be built (object not found, fitness below the
estimator's `min_fitness`) raises `sim.exceptions.EpisodeAborted`: the episode ends as a recorded
perception failure. Each action becomes an absolute TCP target about the measured pose (as
`fmb_ros.skill.SkillExecution.tick`) and passes `sim.safety.SafetyFilter` with the robot's default
limits; a refused one (NaN, malformed) holds the arm, and the verdicts are counted per episode.
"""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np

from fmb_core.errors import ParameterError
from sim.exceptions import EpisodeAborted
from sim.perceived_goals import (
    FIXTURE_OBJECT,
    PerceivedGoalConfig,
    calibration_errors,
    goal_estimator,
    perceive_goals,
    perception_errors,
)
from sim.safety import SafetyFilter, SafetyLimits


class RobotLoopRunner:
    """See module docstring.

    Args:
        runner: the PolicyRunner, or any `sim.contracts.GoalConditioned` controller.
        config: how the perceived goal is made.
        limits: the safety filter's limits (default: the robot's, `SafetyLimits()`).
    """

    def __init__(
        self, runner, config: PerceivedGoalConfig = PerceivedGoalConfig(), limits: SafetyLimits = SafetyLimits()
    ):
        from sim.contracts import GoalConditioned

        if not isinstance(runner, GoalConditioned):
            name = type(runner).__name__
            raise ParameterError(f"RobotLoopRunner wraps a GoalConditioned runner; {name} takes no goal")
        self.runner = runner
        self.config = config
        self.limits = limits
        self.goal_key = runner.goal_key
        self.needs_subgoals = runner.needs_subgoals
        self._estimators: dict = {}
        self.safety = SafetyFilter(limits)
        self.verdicts: Counter = Counter()
        self.first_refusal = ""
        self.report: dict = {}

    # the rollout sets `rng` per episode; it belongs to the inner runner
    @property
    def rng(self):
        return self.runner.rng

    @rng.setter
    def rng(self, value):
        self.runner.rng = value

    def __getattr__(self, name):  # everything else (policy, decisions, ...) is the inner runner's
        if name == "runner":
            raise AttributeError(name)
        return getattr(self.runner, name)

    def reset(self, env) -> None:
        self.safety = SafetyFilter(self.limits)
        self.verdicts: Counter = Counter()
        self.first_refusal = ""
        self.report = {
            "goals": "perceived",
            "in_hand_source": "",
            "perception": None,
            "perception_failure": "",
            "hand_eye": [],
        }
        info = env.episode.info
        keys = (self.goal_key,) if self.goal_key else ()
        if self.needs_subgoals:  # GravMap's sub-goals: from the poses of these goals, not the simulator's
            from policies.gravmap.subgoals import PERCEIVED_GOALS

            if env.task.name not in PERCEIVED_GOALS:
                raise ParameterError(
                    f"no GravMap sub-goals from perception for task {env.task.name!r} "
                    f"(known: {', '.join(PERCEIVED_GOALS)}); use --goals truth"
                )
            keys = tuple(dict.fromkeys((*keys, *PERCEIVED_GOALS[env.task.name])))
        if not keys:  # a policy without a goal or sub-goals: nothing to perceive, only the filter
            self.runner.reset(env)
            return
        # What an operator tells perception is on the table: the peg part, and the fixture if any.
        scene = (info["peg"], any(o.key == FIXTURE_OBJECT for o in env.episode.objects))
        if scene not in self._estimators:
            self._estimators[scene] = goal_estimator(scene[0], self.config, fixture=scene[1])
        estimator = self._estimators[scene]
        # The cloud's downsampling draws from a copy of the episode's generator: the policy's own
        # draws stay those of a run with ground-truth goals.
        seed = int(copy.deepcopy(self.runner.rng).integers(2**31))
        tcp = env.tcp_pose()
        goals = perceive_goals(env, estimator, self.config, np.random.default_rng(seed), keys)
        truth = {o.key: env.object_pose(o.key) for o in env.episode.objects}  # for the report only
        self.report["perception"] = perception_errors(goals.estimate, truth, info, estimator, goals.held, tcp)
        self.report["in_hand_source"] = goals.in_hand_source
        self.report["hand_eye"] = calibration_errors(env, goals.cameras)
        if goals.failure:
            self.report["perception_failure"] = goals.failure
            raise EpisodeAborted(f"perception failure: {goals.failure}")
        subgoals = None
        if self.needs_subgoals:
            from policies.gravmap.subgoals import perceived_subgoals

            subgoals = perceived_subgoals(env.task.name, info, goals, tcp)
        # never the simulator's goal: the estimate's (a goal-free policy gets None and ignores it)
        self.runner.reset(env, goal=goals.targets.get(self.goal_key), subgoals=subgoals)

    def act(self, env) -> np.ndarray:
        return self.runner.act(env)

    def command(self, env, action) -> tuple[np.ndarray, bool]:
        """(safe absolute TCP target (7,) [m, xyzw], close gripper) for the delta `action` (7,)."""
        now = env.steps / env.config.physics.control_hz  # [s] the observation is this step's
        cmd = self.safety.filter_action(action, env.tcp_pose(), now, now)
        self.verdicts[cmd.verdict.value] += 1
        if cmd.holding and not self.first_refusal:
            self.first_refusal = f"step {env.steps}: {cmd.reason}"
        return cmd.pose, cmd.close_gripper

    def episode_report(self) -> dict:
        """The JSON-ready facts of the last episode: goal source, in-hand source, perception errors
        and failure, safety verdict counts and the first refusal."""
        return {
            **self.report,
            "safety": dict(sorted(getattr(self, "verdicts", Counter()).items())),
            "safety_stop": getattr(self, "first_refusal", ""),
        }
