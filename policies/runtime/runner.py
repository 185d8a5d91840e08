"""Acting with a policy in a loop: receding-horizon chunks, optional temporal ensembling, and a
hook that chooses among several sampled candidates (preference-scored selection plugs in here).

A runner is a goal-conditioned controller (`sim.contracts.GoalConditioned`) for
`sim.rollout.run_episode` and the skill servers: it reads the world's latest observation only, never
privileged state, with two stated exceptions that are the skill's *command* rather than its
observation: the object family, when the policy was trained with object one-hots (as FMB's were),
and the goal pose of a goal-conditioned policy. The caller hands the goal and GravMap's sub-goals
to `reset(world, goal=..., subgoals=...)`: from perception (`policies.runtime.perceived.RobotLoopRunner`,
the ROS skill server); left out, `reset` takes the task's own target and builds sub-goals from the
ground-truth object poses (`policies.gravmap.subgoals`): an upper bound.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from fmb_core.errors import ParameterError, check_choice, check_range
from policies.common.features import GOAL_POSE
from policies.conditioners import needs_subgoals
from policies.config import goal_key
from policies.gravmap.conditioner import SUBGOAL
from policies.runtime.policy import Policy
from sim.observation import TCP_POSE

Selector = Callable[[list, np.ndarray], int]
"""(observation history, candidates (N, Tp, A)) -> index of the candidate to execute."""


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """How a policy acts, set alike by `fmb eval`, preference collection, the ablation and the ROS
    skill server (each shell names these its own way: `--candidates`, the `candidates` parameter).

    Attributes:
        num_samples: candidates drawn per decision (one batched pass).
        ensemble: 0 = receding horizon (execute `action_horizon` actions of each chunk, then
            re-plan); > 0 = temporal ensembling: re-plan every step and average every prediction
            made for the current step with weights exp(-ensemble * age) (ACT), which smooths chunk
            switches.
        action_horizon: actions executed per chunk before re-planning (0 = the policy's); shorter
            reacts faster, longer is smoother and cheaper.
        guidance: scale of sub-goal guidance during sampling (0 = off; policies.gravmap.guidance).
        temperature: scale of the diffusion's initial noise (1 = as trained; below 1 samples
            nearer the centre of the action distribution, above 1 draws more diverse candidates).
        select: how a candidate is picked ("none": the first; "implicit" or "explicit": the safe
            candidate the preference reward at `reward` scores best, policies.preference.select;
            "oracle": the one whose simulated rollout ends best, the bound of any reward, in
            simulation only: `fmb eval` builds a policies.preference.oracle.OracleRunner for it,
            `make_runner` refuses it).
        reward: reward model folder (fmb prefs train) for `select` implicit or explicit.
    """

    num_samples: int = 1
    ensemble: float = 0.0
    action_horizon: int = 0
    guidance: float = 0.0
    temperature: float = 1.0
    select: str = "none"
    reward: str = ""

    def __post_init__(self):
        from policies.preference.select import SELECTIONS

        check_range("num_samples", self.num_samples, 1, 4096)
        check_range("ensemble", self.ensemble, 0.0, 10.0)
        check_range("action_horizon", self.action_horizon, 0, 4096)
        check_range("guidance", self.guidance, 0.0, 1e3)
        check_range("temperature", self.temperature, 0.0, 10.0)
        check_choice("select", self.select, SELECTIONS)
        if self.select != "none" and self.num_samples < 2:
            raise ParameterError(
                f"select {self.select} picks among candidates: set num_samples >= 2 (got {self.num_samples})",
                "num_samples",
                self.num_samples,
            )

    def to_dict(self) -> dict:
        """The JSON-ready settings, as results record them ("candidates" is `num_samples`)."""
        d = dataclasses.asdict(self)
        return {"candidates": d.pop("num_samples"), **d}


def make_runner(policy: Policy, config: RunnerConfig = RunnerConfig(), *, skill: str = "", wrap=None) -> PolicyRunner:
    """The runner every shell builds: `config`'s selection resolved into a selector (the reward
    model at `config.reward`, checked against the policy and `skill`), wrapped by `wrap(selector)`
    when given (a recorder of the candidates, the ROS markers)."""
    selector = None
    if config.select != "none":
        from policies.preference.select import make_selector

        selector = make_selector(policy, config.select, config.reward, skill or None)
    if wrap is not None:
        selector = wrap(selector)
    return PolicyRunner(policy, config, selector=selector, skill=skill)


class PolicyRunner:
    """Turns a Policy into 10 Hz actions.

    Args:
        policy: the trained policy.
        config: how it acts (RunnerConfig); its `select`/`reward` are resolved by `make_runner`.
        selector: picks a candidate (default: the first, i.e. a plain sample).
        skill: skill to condition on (multi-skill policies).
    """

    def __init__(
        self,
        policy: Policy,
        config: RunnerConfig = RunnerConfig(),
        *,
        selector: Selector | None = None,
        skill: str = "",
    ):
        c = policy.config
        check_range("action_horizon", config.action_horizon, 0, c.pred_horizon - c.obs_horizon + 1)
        self.run_config = config
        self.temperature = float(config.temperature)
        self.guidance = float(config.guidance)
        self.action_horizon = int(config.action_horizon) or c.action_horizon
        self.policy = policy
        self.num_samples = int(config.num_samples)
        self.selector = selector
        self.ensemble = float(config.ensemble)
        self.skill = skill
        self.rng = np.random.default_rng(0)
        self.decisions = 0
        self.reset(None)

    @property
    def goal_key(self) -> str:
        """The task target the policy conditions on for the runner's skill ("tcp_goal", "grasp";
        "" for none; `policies.config.goal_key`)."""
        return goal_key(self.policy.config, self.skill or (self.policy.skills[0] if self.policy.skills else ""))

    @property
    def needs_subgoals(self) -> bool:
        """A policy with a sub-goal conditioner (GravMap), or sampling guided by sub-goals
        (`guidance` > 0)."""
        return needs_subgoals(self.policy.config) or self.guidance > 0

    def reset(self, env, goal: np.ndarray | None = None, subgoals: Sequence | None = None) -> None:
        """Start an episode (or skill) in `env` (sim.contracts.ControllerWorld; None: clear only).

        Args:
            goal: (7,) pose of the `goal_key` target [m, xyzw] for a goal-conditioned policy, as a
                robot perceives it; None = the simulator's own target from `env.episode.info`
                (`--goals truth`: an upper bound).
            subgoals: GravMap sub-goals (policies.gravmap.subgoals.Subgoal) when `needs_subgoals`;
                None = built from `env`'s object poses (`privileged_subgoals`).
        """
        c = self.policy.config
        self.history: deque = deque(maxlen=c.obs_horizon)
        self.queue: deque = deque()
        self.predictions: deque = deque(maxlen=c.pred_horizon)  # (time made, chunk)
        self.t = 0
        self.family = ""
        self.goal_pose: np.ndarray | None = None
        if env is not None and c.families:
            self.family = env.episode.info.get("family", "")
        if env is not None and self.goal_key:
            pose = env.episode.info["targets"][self.goal_key] if goal is None else goal
            self.goal_pose = np.asarray(pose, float)
            if self.goal_pose.shape != (7,) or not np.all(np.isfinite(self.goal_pose)):
                raise ParameterError(f"goal {self.goal_key!r} must be a finite (7,) pose, got {self.goal_pose!r}")
        self.subgoals = None  # a policies.gravmap SubgoalTracker when GravMap or guidance is on
        if env is not None and self.needs_subgoals:
            from policies.gravmap.subgoals import SubgoalTracker, privileged_subgoals

            self.subgoals = SubgoalTracker(privileged_subgoals(env) if subgoals is None else subgoals)
        if hasattr(self.selector, "reset"):  # a selector that conditions on the skill/object (preference)
            self.selector.reset(self)

    def sample(self, history: list, seed: int, num_samples: int = 0, temperature: float | None = None) -> np.ndarray:
        """(N, Tp, A) candidate chunks for `history` with this runner's skill, object, guidance and
        temperature (N = `num_samples` or the runner's; `temperature` None = the runner's)."""
        return self.policy.predict(
            history,
            num_samples or self.num_samples,
            seed=seed,
            skill=self.skill,
            family=self.family,
            guidance=self.guidance,
            temperature=self.temperature if temperature is None else temperature,
        )

    def choose(self, history: list, chunks: np.ndarray) -> np.ndarray:
        """The (Tp, A) chunk the selector picks from `chunks` (the first without a selector)."""
        k = 0 if self.selector is None or len(chunks) == 1 else int(self.selector(history, chunks))
        return chunks[k]

    def _decide(self) -> np.ndarray:
        """The chosen (Tp, A) chunk for the current history."""
        history = list(self.history)
        chunks = self.sample(history, int(self.rng.integers(2**31)))
        self.decisions += 1
        return self.choose(history, chunks)

    def observe(self, env) -> dict:
        """The environment's latest observation with the skill's command added (the goal pose of
        a goal-conditioned policy, the current GravMap sub-goal), appended to the history."""
        obs = env.last_observation
        if obs is None:
            raise RuntimeError("the environment has no observation yet; call env.reset() first")
        if self.policy.config.goal:
            if self.goal_pose is None:
                raise RuntimeError(f"the policy needs its goal ({self.goal_key!r}): reset(env, goal=...)")
            obs = {**obs, GOAL_POSE: self.goal_pose}
        if self.subgoals is not None:  # set by reset from the task, or by a caller with perceived poses
            obs = {**obs, SUBGOAL: self.subgoals.update(obs[TCP_POSE]).vector()}
        self.history.append(obs)
        return obs

    def act(self, env) -> np.ndarray:
        self.observe(env)
        c = self.policy.config
        first = c.obs_horizon - 1  # chunk index of the current step
        if self.ensemble > 0:
            self.predictions.append((self.t, self._decide()))
            rows, ages = [], []
            for made, chunk in self.predictions:
                i = first + self.t - made
                if i < len(chunk):
                    rows.append(chunk[i])
                    ages.append(self.t - made)
            w = np.exp(-self.ensemble * np.asarray(ages, float))
            action = (np.asarray(rows) * w[:, None]).sum(0) / w.sum()
        else:
            if not self.queue:
                self.queue.extend(self._decide()[first : first + self.action_horizon])
            action = self.queue.popleft()
        self.t += 1
        action = np.asarray(action, np.float64).copy()
        action[6] = 1.0 if action[6] >= 0.5 else 0.0
        return action
