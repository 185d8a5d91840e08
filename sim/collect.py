"""Demonstration collection and expert evaluation, optionally over several worker processes.

Episode i uses seed `seed + i`; a rerun into the same store skips the seeds already stored, so
an interrupted collection resumes where it stopped. Workers simulate; the main process is the
only writer of the store. Every worker (and the main process when it runs the episodes itself)
computes with the rollout thread budget (`fmb_core.threads`: one thread each unless `threads` says
otherwise), set before it builds its environment and controller.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fmb_core import threads as thread_budget
from fmb_core.errors import check_range
from sim import parallel
from sim.parallel import Executor
from sim.rollout import EpisodeResult, run_episode, wilson_interval


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What every worker builds: an environment and an expert.

    Attributes:
        task: task name.
        backend: backend name.
        cameras: cameras to record.
        image_size: (width, height) [px].
        point_cloud: fused cloud size (0 = none).
        families, sizes: restrict the object pool (None = all FMB pegs).
        noise: expert noise scale.
        dart: scale of the DART execution noise (sim.experts.DartExpert; 0 = off): demonstrations
            then record the expert's action while a noisy one is executed.
        split, side: draw pegs from one side ("train"/"test") of a named split (cad.splits).
        placement: board placement (sim.randomization.PLACEMENTS).
        sensor: depth camera model, a name of `sim.sensor.SENSORS` ("exact" or "default").
        action_delay: control periods each action reaches the arm late (sim.experts.DelayedActions;
            0 = none), the latency of a real arm's network and driver.
        expert_modes: how the expert picks among equivalent ways (`sim.experts.Expert.MODES`):
            "nearest" (default) or "all" (one at random per episode: multimodal demonstrations).
        hand_eye: with a sensor other than "exact", fuse the recorded cloud as the robot fuses it
            (`fmb_sim_robot`, `fmb_cloud_fusion`, `fmb eval --goals perceived`): each side camera's
            calibration refined on the hand first (`sim.perception.hand_eye`).
    """

    task: str = "insert"
    backend: str = "mujoco"
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (128, 128)
    point_cloud: int = 0
    families: tuple[str, ...] | None = None
    sizes: tuple[str, ...] | None = None
    noise: float = 1.0
    split: str = "all"
    side: str = "train"
    placement: str = "train"
    dart: float = 0.0
    sensor: str = "exact"
    action_delay: int = 0
    expert_modes: str = "nearest"
    hand_eye: bool = True

    def build(self):
        from sim.env import make_env
        from sim.experts import make_expert
        from sim.objects import ObjectPool
        from sim.perception.hand_eye import HandEyeConfig
        from sim.sensor import make_sensor

        pool = ObjectPool.of_split(self.split, self.side, families=self.families, sizes=self.sizes)
        env = make_env(
            self.task,
            self.backend,
            objects=pool,
            cameras=self.cameras,
            image_size=self.image_size,
            point_cloud=self.point_cloud,
            placement=self.placement,
            sensor=make_sensor(self.sensor),
            hand_eye=HandEyeConfig(enabled=self.hand_eye and self.sensor != "exact" and self.point_cloud > 0),
        )
        expert = make_expert(
            self.task, noise=self.noise, dart=self.dart, action_delay=self.action_delay, modes=self.expert_modes
        )
        return env, expert


_WORKER = {}


def rollout_budget(workers: int = 1, threads: int = 0) -> thread_budget.ThreadBudget:
    """The thread budget of each of `workers` rollout processes (`threads` > 0 overrides the rule)."""
    check_range("workers", workers, 1, parallel.MAX_RAY_WORKERS)
    return thread_budget.plan_threads(
        "rollout", thread_budget.usable_cores(), workers, threads, thread_budget.env_override()
    )


def _init(spec: RunSpec, budget: thread_budget.ThreadBudget) -> None:
    thread_budget.apply_threads(budget)  # before build(): torch and the renderer start with it
    _WORKER["env"], _WORKER["expert"] = spec.build()
    _WORKER["spec"] = spec


def _run(args: tuple[int, bool]) -> tuple[int, EpisodeResult]:
    seed, record = args
    env, expert = _WORKER["env"], _WORKER["expert"]
    expert.rng = np.random.default_rng(seed)  # the same seed, the same demonstration
    result = run_episode(env, expert, seed, record=record)
    result.info["worker_threads"] = thread_budget.torch_threads()  # 0 when the controller needs no torch
    report = getattr(expert, "episode_report", None)  # a controller's own per-episode facts (goals, safety)
    if report is not None:
        result.info["report"] = report()
    return seed, result


def run_many(
    spec: RunSpec,
    seeds: list[int],
    record: bool,
    workers: int = 1,
    budget: thread_budget.ThreadBudget | None = None,
    executor: Executor | None = None,
) -> Iterator[tuple[int, EpisodeResult]]:
    """Yield (seed, result) for every seed, in completion order, on `executor` (`sim.parallel`;
    default: `workers` local processes), each worker with `budget` (default: `rollout_budget`).
    On Ray, a spec with `portable()` (a policy's) is replaced by what that returns, which carries
    the files it needs (the nodes of a cluster need not have the run folders).
    An episode whose worker died more often than Ray retries it comes back as a failure without
    data, its info holding "worker_failure" (the reason)."""
    executor = executor or Executor("local", workers)
    budget = budget or rollout_budget(executor.workers)
    if executor.kind == "ray" and hasattr(spec, "portable"):
        spec = spec.portable()  # e.g. a policy's: its checkpoint files travel with it to the cluster's nodes
    jobs = [(s, record) for s in seeds]
    yield from parallel.imap(_init, (spec, budget), _run, jobs, executor, budget.threads, _failed)


def _failed(job: tuple[int, bool], reason: str) -> tuple[int, EpisodeResult]:
    return job[0], EpisodeResult(False, 0, {"worker_failure": reason}, None, None)


def collect(
    spec: RunSpec,
    out: Path,
    episodes: int,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    threads: int = 0,
    executor: Executor | None = None,
) -> dict:
    """Collect `episodes` expert demonstrations into the store at `out`; return a summary.
    `threads` > 0 overrides each worker's thread budget (`rollout_budget`); `executor` says where
    the episodes run (`sim.parallel`; default `workers` local processes). Each episode is stored as
    it arrives; one whose worker died too often is not stored ("worker_failures": its seeds), so a
    rerun collects it."""
    from tqdm import tqdm

    from sim.store import EpisodeStore

    check_range("episodes", episodes, 1, 1_000_000)
    store = EpisodeStore.create(
        out,
        {
            "task": spec.task,
            "backend": spec.backend,
            "fps": 10,
            "cameras": list(spec.cameras),
            "image_size": list(spec.image_size),
            "point_cloud": spec.point_cloud,
            "sensor": spec.sensor,
            "hand_eye": spec.hand_eye and spec.sensor != "exact" and spec.point_cloud > 0,
            "expert_modes": spec.expert_modes,
            "source": "fmb scripted expert",
            "split": {"name": spec.split, "side": spec.side},
        },
    )
    done = store.done_seeds()
    todo = [s for s in range(seed, seed + episodes) if s not in done]
    successes = 0
    bar = tqdm(
        total=episodes, initial=episodes - len(todo), desc=f"collect {spec.task}", unit="ep", disable=not progress
    )
    unstable = 0
    failures = []
    executor = executor or Executor("local", workers)
    budget = rollout_budget(executor.workers, threads)
    for s, result in run_many(spec, todo, record=True, budget=budget, executor=executor):
        if "worker_failure" in result.info:  # its worker died, Ray's retries spent: not stored, a rerun retries
            failures.append(int(s))
            bar.update(1)
            continue
        if result.data is None:  # the physics blew up before the first step: nothing to store
            unstable += 1
            bar.update(1)
            continue
        meta = {
            "seed": int(s),
            "task": spec.task,
            "success": result.success,
            "steps": result.steps,
            "backend": spec.backend,
            "noise": spec.noise,
            "dart": spec.dart,
            "unstable": result.info.get("unstable", ""),
            **_facts(result.info),
            **result.info.get("report", {}),  # the expert's own choices (e.g. the turn it inserted at)
        }
        store.append(result.data, meta)
        successes += result.success
        bar.update(1)
        bar.set_postfix(success=f"{successes}/{bar.n - (episodes - len(todo))}")
    bar.close()
    return {
        "store": str(Path(out).absolute()),
        "episodes": len(store),
        "new": len(todo),
        "new_successes": successes,
        "skipped_existing": episodes - len(todo),
        "unstable_not_stored": unstable,
        "worker_failures": sorted(failures),
        "executor": executor.to_dict(),
        "threads": budget.to_dict(),
    }


def expert_eval(
    spec: RunSpec,
    episodes: int,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    label: str = "expert",
    threads: int = 0,
    executor: Executor | None = None,
) -> dict:
    """Success rate of the expert with 95 % Wilson intervals, per shape family, size and overall,
    plus the mean of each task metric at the end of the episodes (e.g. parts placed), and one
    row per episode (seed, family, size, success, steps, final metrics) sorted by seed, so that a
    failure can be replayed.

    `spec` is anything whose `build()` gives (env, controller), e.g. a RunSpec (scripted expert)
    or a policy run spec; `label` names it on the progress bar; `threads` > 0 overrides each
    worker's thread budget (`rollout_budget`). The result's "threads" holds the budget and the
    torch threads the workers reported ("worker_torch_threads", empty without torch). A controller
    with `episode_report()` adds its facts to each row (`policies.runtime.perceived`: goal source,
    perception errors, safety verdicts); an episode a controller aborted has "aborted" (the reason).
    `executor` says where the episodes run (`sim.parallel`; default `workers` local processes); an
    episode whose worker died more often than Ray retries it counts in no rate and is listed in
    "worker_failures" (seed, reason)."""
    from tqdm import tqdm

    check_range("episodes", episodes, 1, 1_000_000)
    groups: dict[str, dict[str, list[int]]] = {"family": defaultdict(list), "size": defaultdict(list)}
    outcomes = []
    steps = []
    metrics: dict[str, list[float]] = defaultdict(list)
    unstable = aborted = 0
    rows = []
    stage_names: list[str] = []  # a chain's, from its episodes' facts
    worker_threads = set()
    failures = []
    executor = executor or Executor("local", workers)
    budget = rollout_budget(executor.workers, threads)
    for episode_seed, result in tqdm(
        run_many(spec, list(range(seed, seed + episodes)), record=False, budget=budget, executor=executor),
        total=episodes,
        desc=f"{label} {spec.task}",
        unit="ep",
        disable=not progress,
    ):
        if "worker_failure" in result.info:
            failures.append({"seed": int(episode_seed), "reason": result.info["worker_failure"]})
            continue
        facts = result.info["episode"]
        stage_names = stage_names or list(facts.get("stage_names", []))
        outcomes.append(int(result.success))
        steps.append(result.steps)
        if result.info.get("worker_threads"):
            worker_threads.add(int(result.info["worker_threads"]))
        unstable += "unstable" in result.info
        aborted += "aborted" in result.info
        for key, value in result.info["metrics"].items():
            metrics[key].append(float(value))
        groups["family"][facts["family"]].append(int(result.success))
        groups["size"][facts["size"]].append(int(result.success))
        rows.append(
            {
                "seed": int(episode_seed),
                "peg": facts.get("peg", ""),
                "family": facts["family"],
                "size": facts["size"],
                "success": bool(result.success),
                "steps": int(result.steps),
                "metrics": {k: float(v) for k, v in result.info["metrics"].items()},
                **({"aborted": result.info["aborted"]} if "aborted" in result.info else {}),
                **_stage_row(facts, result.success),
                **result.info.get("report", {}),
            }
        )

    if not outcomes:
        raise parallel.WorkerDied(f"no episode came back; their workers died: {failures[:3]}")

    def summary(values: list[int]) -> dict:
        low, high = wilson_interval(sum(values), len(values))
        return {
            "episodes": len(values),
            "successes": sum(values),
            "success_rate": sum(values) / len(values),
            "ci95": [low, high],
        }

    return {
        "task": spec.task,
        "backend": spec.backend,
        **stage_summary(rows, stage_names, summary),
        "overall": summary(outcomes)
        | {"mean_steps": sum(steps) / len(steps), "unstable_episodes": unstable, "aborted_episodes": aborted},
        "final_metrics_mean": {k: sum(v) / len(v) for k, v in sorted(metrics.items())},
        "per_family": {k: summary(v) for k, v in sorted(groups["family"].items())},
        "per_size": {k: summary(v) for k, v in sorted(groups["size"].items())},
        "episodes": sorted(rows, key=lambda r: r["seed"]),
        "worker_failures": sorted(failures, key=lambda f: f["seed"]),
        "executor": executor.to_dict(),
        "threads": budget.to_dict() | {"worker_torch_threads": sorted(worker_threads)},
    }


def summary_line(result: dict) -> str:
    """One line of an `expert_eval` result: overall success with its interval and, for a chain,
    each stage's success among the episodes that reached it and the failed episodes it stopped."""
    o = result["overall"]
    low, high = o["ci95"]
    line = f"overall {o['successes']}/{o['episodes']} = {o['success_rate']:.1%} (95% CI {low:.1%}-{high:.1%})"
    for name, s in result.get("per_stage", {}).items():
        if s["episodes"]:
            line += f"; {name} {s['successes']}/{s['episodes']} (failed there: {result['failed_at'][name]})"
    return line


def _stage_row(facts: dict, success: bool) -> dict:
    """A chain episode's row entries: "stage_reached" (the stage it ended in) and "stages_done"
    (stages whose own check held); {} for a single-skill task."""
    names = facts.get("stage_names")
    if not names:
        return {}
    last = int(facts["stage"])
    return {"stage_reached": names[last], "stages_done": last + int(bool(success))}


def stage_summary(rows: list[dict], stages: list[str], summary) -> dict:
    """For a chain's episode rows (`_stage_row`) and its stage names in order: "per_stage", each
    stage's success among the episodes that started it (`summary` of those: episodes = how many
    reached it; with a controller's "attempts" per row, the attempts made and the episodes that
    retried it); "failed_at": how many failed episodes stopped in each stage. {} without stages."""
    if not stages:
        return {}
    per_stage, failed_at = {}, {}
    for k, name in enumerate(stages):
        started = [r for r in rows if r["stages_done"] >= k]
        per_stage[name] = summary([int(r["stages_done"] > k) for r in started]) if started else {"episodes": 0}
        if started and any("attempts" in r for r in started):  # a controller that retries stages
            attempts = [r.get("attempts", {}).get(name, 1) for r in started]
            per_stage[name].update(attempts=int(sum(attempts)), retried_episodes=sum(a > 1 for a in attempts))
        failed_at[name] = sum(1 for r in rows if not r["success"] and r["stages_done"] == k)
    return {"per_stage": per_stage, "failed_at": failed_at}


def _facts(info: dict) -> dict:
    facts = dict(info["episode"])
    facts["metrics"] = {k: float(v) for k, v in info["metrics"].items()}
    return facts


CONTACT_FORCE = 3.0
"""Force at the TCP [N] above which `store_stats` counts a step as pressing on something."""


def store_stats(path: str | Path) -> dict:
    """What an episode store holds: episodes and successes, episode lengths, and how often the
    hand pressed on something (wrench force above CONTACT_FORCE; the states DART adds)."""
    from sim.store import EpisodeStore

    store = EpisodeStore.open(path)
    lengths, successes, contact_steps, contact_episodes = [], 0, 0, 0
    for index in store.episode_indices():
        meta = store.load_meta(index)
        successes += meta.get("success") is True
        data = store.load(index, ["action", "obs/wrench"]).data
        lengths.append(len(data["action"]))
        if "obs/wrench" in data:
            pressing = int((np.linalg.norm(data["obs/wrench"][:, :3], axis=1) > CONTACT_FORCE).sum())
            contact_steps += pressing
            contact_episodes += pressing > 0
    n = len(lengths)
    return {
        "store": str(Path(path).absolute()),
        "meta": store.meta,
        "episodes": n,
        "successes": successes,
        "steps": int(sum(lengths)),
        "length_mean": float(np.mean(lengths)) if n else 0.0,
        "length_max": int(max(lengths)) if n else 0,
        "contact_steps": contact_steps,
        "contact_episodes": contact_episodes,
    }
