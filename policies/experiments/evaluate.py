"""Evaluate a trained policy in simulation: success per shape family and size with 95 % intervals,
mean steps, and mp4 videos of a few episodes. Episodes run in worker processes like expert
evaluation (`sim.collect`), each worker loading the checkpoint once.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError, check_choice, check_range
from policies.common import checkpoint
from policies.runtime.runner import RunnerConfig, make_runner
from sim.perceived_goals import DEFAULT_GOAL_SOURCE, GOAL_SOURCES, TRUTH_LABEL, PerceivedGoalConfig

DEFAULT_SENSORS = {"truth": "exact", "perceived": "default"}
"""Goal source -> the sensor model (`sim.sensor.SENSORS`) an evaluation runs with unless told:
a robot's cameras are not exact; truth runs keep the exact depth of earlier results."""


def _runner(policy, config: RunnerConfig, skill: str):
    """`make_runner`'s runner, or with `select` "oracle" the simulator-only OracleRunner (the bound
    of selection: each candidate tried in the simulator, `policies.preference.oracle`)."""
    if config.select == "oracle":
        from policies.preference.oracle import OracleRunner

        return OracleRunner(policy, config, skill=skill)
    return make_runner(policy, config, skill=skill)


@dataclasses.dataclass(frozen=True)
class PolicyRunSpec:
    """What every evaluation worker builds: an environment like the training data's and a runner.

    Attributes:
        policy: run or checkpoint folder.
        task, backend: environment; task "" = the policy's (only) skill.
        split, side: object pool: one side of a named split (cad.splits).
        families: restrict to these families (None = all of the split side).
        runner: how the policy acts (policies.runtime.runner.RunnerConfig: candidates, ensembling, action
            horizon, guidance, temperature, selection and its reward model).
        device: torch device ("auto", "cpu", "cuda").
        placement: board placement (sim.randomization.PLACEMENTS): "train" = the demonstrations'
            box, "novel" = outside it.
        goals: where the skill's goal comes from (sim.perceived_goals.GOAL_SOURCES): "truth" = the
            simulator's task targets (an upper bound, as before); "perceived" = what a robot does:
            the estimate of the side cameras' cloud at the skill's start, and every action through
            the safety filter (policies.runtime.perceived.RobotLoopRunner).
        perception: how a perceived goal is made (cameras, cloud, PerceptionConfig).
        sensor: the depth cameras' model, a name of `sim.sensor.SENSORS` ("exact", "default"), for
            the policy's own images and clouds and for perception's; "" = "default" (D415-like)
            with perceived goals, "exact" with truth (`sensor_name`).
        max_steps: steps after which an episode ends unsuccessful (0 = the task's limit).
        stages: for a chain task (`sim.tasks.chain`): (skill, run folder or "expert") per stage,
            the policy (or scripted expert) that runs that stage; a stage left out runs `policy`
            (a policy trained on several skills). Each stage is reset with its own goal when it
            begins, the simulator's target fixed at that moment (`sim.tasks.skill_goals`).
        stage_attempts: for a chain: 0 = a stage runs until it succeeds or the chain's step limit;
            N >= 1 = each attempt gets its stage's own step limit, the stage's policy is reset (its
            goal re-perceived) between attempts and the episode fails at a stage after N of them,
            as the ROS task executor retries (`sim.experts.chain.ChainController`).
        approach: for a chain: a learned insert stage takes over only after a planned move of the
            held peg to 40 mm above its goal (as a robot's motion planner moves it; the chain's
            board lies 25-40 cm from where the peg was grasped, the single-skill insert starts
            within 2 cm of its hole), and a learned rotate after the wrist turned the long way
            round where the short way lacks joint-7 room (`sim.experts.chain.WristTurn`, as the
            chain experts do); False = the policies do it themselves.
    """

    policy: str
    task: str = ""
    backend: str = "mujoco"
    split: str = "all"
    side: str = "train"
    families: tuple[str, ...] | None = None
    runner: RunnerConfig = RunnerConfig()
    device: str = "auto"
    placement: str = "train"
    goals: str = DEFAULT_GOAL_SOURCE
    perception: PerceivedGoalConfig = PerceivedGoalConfig()
    max_steps: int = 0
    sensor: str = ""
    stages: tuple[tuple[str, str], ...] = ()
    stage_attempts: int = 0
    approach: bool = True

    def __post_init__(self):
        from sim.sensor import SENSORS

        check_choice("goals", self.goals, GOAL_SOURCES)
        check_range("max_steps", self.max_steps, 0, 1_000_000)
        if self.sensor:
            check_choice("sensor", self.sensor, tuple(SENSORS))
        if not self.policy and not self.stages:
            raise ParameterError("a policy is needed (a run folder, or one per stage of a chain)")
        if self.stages and not self.chain:
            raise ParameterError(
                f"--policy SKILL=RUN names the stages of a chain task; {self.task or 'the task'!r} is not one "
                "(--task vertical_chain or horizontal_chain)"
            )

    @property
    def chain(self) -> tuple[str, ...]:
        """The stage names of the task when it is a chain, else ()."""
        from sim.tasks import TASKS

        return tuple(getattr(TASKS.get(self.task), "stages", ()))

    def stage_sources(self) -> dict[str, str]:
        """Stage skill -> run folder or "expert", for a chain task; ParameterError naming the
        stage when one has nothing to run it or a given stage is not in the chain."""
        given = dict(self.stages)
        extra = [s for s in given if s not in self.chain]
        if extra:
            raise ParameterError(
                f"--policy {extra[0]}=...: {extra[0]!r} is not a stage of {self.task} ({' -> '.join(self.chain)})"
            )
        out = {}
        for skill in self.chain:
            source = given.get(skill) or self.policy
            if not source:
                raise ParameterError(
                    f"stage {skill!r} of {self.task} has no policy: give --policy {skill}=RUN (or {skill}=expert)"
                )
            out[skill] = source
        return out

    def policy_record(self):
        """What results name as the policy: its resolved checkpoint, or per stage for a chain."""
        if not self.chain:
            return str(checkpoint.resolve(self.policy))
        return {
            skill: source if source == EXPERT else str(checkpoint.resolve(source))
            for skill, source in self.stage_sources().items()
        }

    @property
    def sensor_name(self) -> str:
        """The sensor model the episodes run with: `sensor`, else the goal source's default."""
        return self.sensor or DEFAULT_SENSORS[self.goals]

    def portable(self):
        """This spec with its checkpoints' files packed in, for workers without the run folders
        (`policies.experiments.portable`; what Ray actors get)."""
        from policies.experiments.portable import portable

        return portable(self, [self.policy] + [source for _, source in self.stages if source != EXPERT])

    def build(self):
        if self.chain:
            return self._build_chain()
        from policies.runtime.policy import Policy

        policy = Policy.load(self.policy, self.device)
        task = self.task or (policy.skills[0] if policy.skills else "")
        if policy.skills and task not in policy.skills:
            raise ParameterError(f"--task {task!r}: the policy was trained for {', '.join(policy.skills)}")
        env = self._env(task, policy.meta.get("observation", {}))
        runner = _runner(policy, self.runner, task)
        if self.goals == "perceived":
            from policies.runtime.perceived import RobotLoopRunner

            return env, RobotLoopRunner(runner, self.perception)
        return env, runner

    def _env(self, task: str, obs: dict):
        """The environment of `task` with the observation `obs` (a checkpoint's "observation":
        cameras, image size, point cloud) and this spec's objects, placement and sensor. With
        perceived goals the policy's own cloud is fused as the robot fuses it (`fmb_sim_robot`,
        `fmb_cloud_fusion`): each side camera's calibration refined on the hand first, when
        perception refines it (`perception.hand_eye`)."""
        from sim.env import make_env
        from sim.objects import ObjectPool
        from sim.perception.hand_eye import HandEyeConfig
        from sim.sensor import SENSORS

        pool = ObjectPool.of_split(self.split, self.side, families=self.families)
        return make_env(
            task,
            self.backend,
            objects=pool,
            cameras=tuple(obs.get("cameras", ())),
            image_size=tuple(obs.get("image_size", (128, 128))),
            point_cloud=int(obs.get("point_cloud", 0)),
            placement=self.placement,
            max_steps=self.max_steps,
            sensor=SENSORS[self.sensor_name],
            hand_eye=self.perception.hand_eye if self.goals == "perceived" else HandEyeConfig(enabled=False),
        )

    def _build_chain(self):
        """(env, `sim.experts.chain.ChainController`) for a chain task: each stage's policy (or
        expert), checked against its stage, in one environment that records what all of them read."""
        from policies.runtime.policy import Policy
        from sim.experts import make_expert
        from sim.experts.chain import APPROACHED, RETREATED, ChainController, FilteredChainController

        perceived = self.goals == "perceived"
        loaded: dict[str, Policy] = {}
        controllers = {}
        for skill, source in self.stage_sources().items():
            if source == EXPERT:
                controllers[skill] = make_expert(skill)
                continue
            if source not in loaded:
                loaded[source] = Policy.load(source, self.device)
            policy = loaded[source]
            if policy.skills and skill not in policy.skills:
                raise ParameterError(
                    f"stage {skill!r} of {self.task}: the policy at {source} was trained for "
                    f"{', '.join(policy.skills)}, not {skill}"
                )
            controllers[skill] = _runner(policy, self.runner, skill)
            if perceived:
                from policies.runtime.perceived import RobotLoopRunner

                controllers[skill] = RobotLoopRunner(controllers[skill], self.perception)
        env = self._env(self.task, chain_observation({s: p.meta.get("observation", {}) for s, p in loaded.items()}))
        # A planned approach brings the learned stages to their single-skill start (`approach`).
        approach = tuple(s for s in APPROACHED if self.approach and s in loaded_stages(self.stage_sources()))
        # The chain experts retreat before these stages too: the demonstrations start there.
        retreat = tuple(s for s in RETREATED if s in self.chain)
        if perceived:
            return env, FilteredChainController(controllers, self.chain, self.stage_attempts, approach, retreat=retreat)
        return env, ChainController(controllers, self.chain, self.stage_attempts, approach, retreat)


def loaded_stages(sources: dict[str, str]) -> tuple[str, ...]:
    """The stages of `sources` (PolicyRunSpec.stage_sources) run by a policy, not the expert."""
    return tuple(s for s, source in sources.items() if source != EXPERT)


EXPERT = "expert"
"""A chain stage's source that runs the skill's scripted expert instead of a policy
(`PolicyRunSpec.stages`): isolates the learned stages, e.g. a learned insert after expert grasps."""


def chain_observation(observations: dict[str, dict]) -> dict:
    """One environment observation for the policies of a chain (source -> checkpoint
    "observation"): the union of their cameras, their common image size and point-cloud size;
    ParameterError naming the two sources that disagree."""
    cameras: list[str] = []
    merged: dict = {}
    for source, obs in observations.items():
        cameras += [c for c in obs.get("cameras", ()) if c not in cameras]
        for key in ("image_size", "point_cloud"):
            if key in obs and key in merged and list(merged[key][1]) != list(np.atleast_1d(obs[key])):
                raise ParameterError(
                    f"the chain's policies observe different {key}: {merged[key][0]} {merged[key][1]}, "
                    f"{source} {list(np.atleast_1d(obs[key]))} (train them on the same recording settings)"
                )
            if key in obs:
                merged[key] = (source, list(np.atleast_1d(obs[key])))
    out = {"cameras": cameras}
    if "image_size" in merged:
        out["image_size"] = merged["image_size"][1]
    if "point_cloud" in merged:
        out["point_cloud"] = merged["point_cloud"][1][0]
    return out


def evaluate(
    spec: PolicyRunSpec,
    episodes: int,
    seed: int = 100_000,
    workers: int = 1,
    videos: int = 0,
    out: Path | None = None,
    progress: bool = True,
    threads: int = 0,
    executor=None,
) -> dict:
    """Success of the policy over `episodes` seeded episodes (seeds seed .. seed+N-1; the default
    start keeps them apart from demonstration seeds 0 ..). With `out`, writes result.json and
    `videos` mp4s of the first episodes there. Each of the `workers` processes computes with the
    rollout thread budget (`sim.collect.rollout_budget`; `threads` > 0 overrides it); `executor`
    (`sim.parallel.Executor`) runs them elsewhere, e.g. as Ray actors, each loading the policy once."""
    from sim.collect import expert_eval
    from sim.tasks import step_limit

    check_range("episodes", episodes, 1, 1_000_000)
    check_range("videos", videos, 0, 100)
    if not spec.task:
        if not spec.policy:
            raise ParameterError(
                "--task is needed with one policy per stage (a chain: vertical_chain, horizontal_chain)"
            )
        skills = checkpoint.load_meta(checkpoint.resolve(spec.policy))["policy"].get("skills", [])
        if len(skills) != 1:
            raise ParameterError(f"--task is needed: the policy knows the skills {skills}")
        spec = dataclasses.replace(spec, task=skills[0])
    record = spec.policy_record()  # a missing stage or checkpoint is named before any episode runs
    result = expert_eval(
        spec, episodes, seed, workers, progress=progress, label="policy", threads=threads, executor=executor
    )
    result["policy"] = record
    result["split"] = {"name": spec.split, "side": spec.side}
    result["placement"] = spec.placement
    result["max_steps"] = step_limit(spec.task, spec.max_steps)
    result["runner"] = {
        **spec.runner.to_dict(),
        "goals": spec.goals,
        "sensor": spec.sensor_name,
        **({"stage_attempts": spec.stage_attempts, "approach": spec.approach} if spec.chain else {}),
    }
    result["goals"] = goal_summary(spec, result["episodes"])
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if videos:
            result["videos"] = [str(p) for p in record_videos(spec, videos, seed, out)]
        (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def goal_summary(spec: PolicyRunSpec, rows: list[dict]) -> dict:
    """The results' "goals": where goals came from and, when perceived, the perception errors,
    failures and safety verdicts over the episode rows (`sim.perceived_goals.summarize_episodes`).
    Rows of ground-truth runs are marked so as well."""
    if spec.goals == "truth":
        for row in rows:
            row["goals"] = TRUTH_LABEL
        return {"source": TRUTH_LABEL, "safety_filter": "off (actions go to the simulator's own clip)"}
    from sim.perceived_goals import summarize_episodes

    c = spec.perception
    summary = summarize_episodes(rows)
    return {
        "source": "perceived",
        "cloud": f"{' + '.join(c.cameras)} cameras, {c.image_size} px, {c.points} points",
        "sensor": spec.sensor_name,
        "in_hand": c.in_hand,
        "min_fitness": c.perception.min_fitness,
        "safety_filter": "sim.safety.SafetyFilter, default limits",
        **summary,
        "hand_eye": {"enabled": c.hand_eye.enabled, **summary["hand_eye"]},
    }


def record_videos(spec: PolicyRunSpec, count: int, seed: int, out: Path, size: int = 192) -> list[Path]:
    """mp4s (side camera | wrist camera) of episodes seed .. seed+count-1 under `out`."""
    from sim.rollout import run_episode
    from sim.video import tile, write_mp4

    env, runner = spec.build()
    cams = {c.name: c.resized(size, size) for c in env.config.camera_specs()}

    def frame(env_):
        return tile([env_.backend.render(cams["side_1"])[0], env_.backend.render(cams["wrist"])[0]])

    class Recorder:
        """The runner, with a frame rendered before every action."""

        def __init__(self):
            self.frames = []
            self.command = getattr(runner, "command", None)  # the safety filter of perceived goals

        def reset(self, env_):
            runner.reset(env_)

        def act(self, env_):
            self.frames.append(frame(env_))
            return runner.act(env_)

    paths = []
    for s in range(seed, seed + count):
        runner.rng = np.random.default_rng(s)
        recorder = Recorder()
        result = run_episode(env, recorder, s)
        path = out / f"episode_{s}_{'success' if result.success else 'failure'}.mp4"
        write_mp4([*recorder.frames, frame(env)], path)
        paths.append(path)
    env.close()
    return paths


def earlier_result(
    folder: Path, run: str | Path | PolicyRunSpec, episodes: int, runner: dict | None = None, max_steps: int = 0
) -> dict | None:
    """The evaluation stored in `folder` when it judged the current checkpoint of `run` (a run
    folder, or a chain's spec: the current checkpoint of each stage's, `policy_record`) over
    `episodes` episodes (and, given `runner`, with those runner settings; with step limit
    `max_steps`, 0 = the task's), else None: lets long jobs (quickstart, ablation) reuse what a
    rerun would only repeat."""
    from sim.tasks import step_limit

    try:
        result = json.loads((Path(folder) / "result.json").read_text())
        record = run.policy_record() if isinstance(run, PolicyRunSpec) else str(checkpoint.resolve(run))
        same = result["policy"] == record and result["overall"]["episodes"] == episodes
        # results from before --goals had ground-truth goals, from before --sensor exact depth
        made = {"goals": "truth", "sensor": "exact"} | result["runner"]
        same = same and all(made.get(k) == v for k, v in (runner or {}).items())
        ran = result.get("max_steps", step_limit(result["task"]))  # older results ran the task's limit
        same = same and ran == step_limit(result["task"], max_steps)
    except (OSError, ValueError, KeyError, checkpoint.CheckpointError):
        return None
    return result if same else None
