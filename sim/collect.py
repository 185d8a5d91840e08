"""Demonstration collection and expert evaluation, optionally over several worker processes.

Episode i uses seed `seed + i`; a rerun into the same store skips the seeds already stored, so
an interrupted collection resumes where it stopped. Workers simulate; the main process is the
only writer of the store.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fmb.errors import check_range
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

    def build(self):
        from sim.env import make_env
        from sim.experts import make_expert
        from sim.objects import ObjectPool

        pool = ObjectPool.fmb(families=self.families, sizes=self.sizes, split=self.split, side=self.side)
        env = make_env(
            self.task,
            self.backend,
            objects=pool,
            cameras=self.cameras,
            image_size=self.image_size,
            point_cloud=self.point_cloud,
            placement=self.placement,
        )
        return env, make_expert(self.task, noise=self.noise, dart=self.dart)


_WORKER = {}


def _init(spec: RunSpec) -> None:
    _WORKER["env"], _WORKER["expert"] = spec.build()
    _WORKER["spec"] = spec


def _run(args: tuple[int, bool]) -> tuple[int, EpisodeResult]:
    seed, record = args
    env, expert = _WORKER["env"], _WORKER["expert"]
    expert.rng = np.random.default_rng(seed)  # the same seed, the same demonstration
    return seed, run_episode(env, expert, seed, record=record)


def run_many(spec: RunSpec, seeds: list[int], record: bool, workers: int = 1) -> Iterator[tuple[int, EpisodeResult]]:
    """Yield (seed, result) for every seed, in completion order, using `workers` processes."""
    check_range("--workers", workers, 1, 64)
    jobs = [(s, record) for s in seeds]
    if workers == 1:
        _init(spec)
        for job in jobs:
            yield _run(job)
        return
    ctx = mp.get_context("spawn")  # renderers and physics engines do not survive fork
    with ctx.Pool(workers, initializer=_init, initargs=(spec,)) as pool:
        yield from pool.imap_unordered(_run, jobs)


def collect(spec: RunSpec, out: Path, episodes: int, seed: int = 0, workers: int = 1, progress: bool = True) -> dict:
    """Collect `episodes` expert demonstrations into the store at `out`; return a summary."""
    from tqdm import tqdm

    from sim.store import EpisodeStore

    check_range("--episodes", episodes, 1, 1_000_000)
    store = EpisodeStore.create(
        out,
        {
            "task": spec.task,
            "backend": spec.backend,
            "fps": 10,
            "cameras": list(spec.cameras),
            "image_size": list(spec.image_size),
            "point_cloud": spec.point_cloud,
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
    for s, result in run_many(spec, todo, record=True, workers=workers):
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
    }


def expert_eval(
    spec: RunSpec, episodes: int, seed: int = 0, workers: int = 1, progress: bool = True, label: str = "expert"
) -> dict:
    """Success rate of the expert with 95 % Wilson intervals, per shape family, size and overall,
    plus the mean of each task metric at the end of the episodes (e.g. parts placed), and one
    row per episode (seed, family, size, success, steps, final metrics) sorted by seed, so that a
    failure can be replayed.

    `spec` is anything whose `build()` gives (env, controller), e.g. a RunSpec (scripted expert)
    or a policy run spec; `label` names it on the progress bar."""
    from tqdm import tqdm

    check_range("--episodes", episodes, 1, 1_000_000)
    groups: dict[str, dict[str, list[int]]] = {"family": defaultdict(list), "size": defaultdict(list)}
    outcomes = []
    steps = []
    metrics: dict[str, list[float]] = defaultdict(list)
    unstable = 0
    rows = []
    for episode_seed, result in tqdm(
        run_many(spec, list(range(seed, seed + episodes)), record=False, workers=workers),
        total=episodes,
        desc=f"{label} {spec.task}",
        unit="ep",
        disable=not progress,
    ):
        facts = result.info["episode"]
        outcomes.append(int(result.success))
        steps.append(result.steps)
        unstable += "unstable" in result.info
        for key, value in result.info["metrics"].items():
            metrics[key].append(float(value))
        groups["family"][facts["family"]].append(int(result.success))
        groups["size"][facts["size"]].append(int(result.success))
        rows.append(
            {
                "seed": int(episode_seed),
                "family": facts["family"],
                "size": facts["size"],
                "success": bool(result.success),
                "steps": int(result.steps),
                "metrics": {k: float(v) for k, v in result.info["metrics"].items()},
            }
        )

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
        "overall": summary(outcomes) | {"mean_steps": sum(steps) / len(steps), "unstable_episodes": unstable},
        "final_metrics_mean": {k: sum(v) / len(v) for k, v in sorted(metrics.items())},
        "per_family": {k: summary(v) for k, v in sorted(groups["family"].items())},
        "per_size": {k: summary(v) for k, v in sorted(groups["size"].items())},
        "episodes": sorted(rows, key=lambda r: r["seed"]),
    }


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
