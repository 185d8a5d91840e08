"""`fmb bench scale`: what more workers and more training processes buy on this machine.

- collect: scripted insertions (no cameras, recorded as `collect` records them) with 1 and 2
  workers, as local processes (1 = in this process) and as Ray actors (a local Ray instance started
  once for the bench; its start is reported apart, `ray_start_seconds`), through the one scheduler
  every command uses (`sim.collect.run_many`). Each figure has the whole call (worker start
  included, as a user sees it), the first episode's arrival (mostly worker start) and the steady
  rate: episodes per minute over the second half of the arrivals, when every worker has started
  (worker start does not touch it). The episodes of the serial run and of 2 Ray actors are compared array for array
  (`identical_to_serial`).
- eval: the same for `fmb eval`'s episodes of a small state-only grasp policy (trained 20 steps:
  latency only; on Ray its checkpoint travels in the spec, as on a cluster).
- ray_overhead: Ray against local processes with 2 workers: the start difference, the steady
  seconds per episode, and what they make of a 100-episode run (`share_of_100_episodes`, the issue's
  target <= 5 %), with and without starting the Ray instance.
- training: `fmb train` of the small preset on the collected demonstrations for `train_steps` steps
  at the same effective batch with 1 process and with 2 gloo processes (`--devices 2`): steps and
  windows per second (training loop only; process start apart), and the loss curves (train_log.csv)
  side by side: the same curve within noise is what the batch rule promises (`policies.distributed`).

The figures are measured, never asserted: the issue's targets are in `targets` for reading.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from fmb_core.errors import check_range

TARGETS = {
    "collect_speedup_2_workers": ">= 1.8 (2 workers / 1 worker episodes per minute)",
    "eval_speedup_2_workers": ">= 1.8",
    "ray_overhead_share": "<= 0.05 of a 100-episode evaluation against local processes",
    "ddp_loss_curve": "2 gloo processes: the same loss curve as 1 process at the same effective batch (within noise)",
}


def _episodes(spec, record: bool, episodes: int, executor) -> tuple[dict, dict]:
    """Run `episodes` seeds through `sim.collect.run_many`; (figures, seed -> actions or success)."""
    from sim.collect import rollout_budget, run_many

    began = time.perf_counter()
    arrivals, outcome = [], {}
    budget = rollout_budget(executor.workers)
    for seed, result in run_many(spec, list(range(episodes)), record, budget=budget, executor=executor):
        arrivals.append(time.perf_counter() - began)
        outcome[seed] = result.data["action"] if record and result.data is not None else bool(result.success)
    half = len(arrivals) // 2  # by then every worker has started (on a busy machine that takes a while)
    steady = arrivals[-1] - arrivals[half - 1]
    return {
        "episodes": episodes,
        "seconds": round(arrivals[-1], 2),
        "episodes_per_min": round(60.0 * episodes / arrivals[-1], 2),
        "first_episode_seconds": round(arrivals[0], 2),
        "steady_episodes_per_min": round(60.0 * (len(arrivals) - half) / steady, 2) if steady > 0 else float("nan"),
    }, outcome


def _same(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(np.array_equal(a[s], b[s]) for s in a)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def _overhead(local: dict, ray: dict, ray_start: float) -> dict:
    """Ray against local processes (2 workers each): per-episode and start costs, and their share
    of a 100-episode run."""
    per_local = 60.0 / local["steady_episodes_per_min"]  # wall seconds per episode, 2 workers
    per_ray = 60.0 / ray["steady_episodes_per_min"]
    # start: whatever the whole call took beyond its episodes at the steady rate
    start = (ray["seconds"] - ray["episodes"] * per_ray) - (local["seconds"] - local["episodes"] * per_local)
    local_100 = local["seconds"] - local["episodes"] * per_local + 100 * per_local
    return {
        "start_seconds": round(start, 2),
        "steady_seconds_per_episode": round(per_ray - per_local, 3),
        "share_of_100_episodes": round((start + 100 * (per_ray - per_local)) / local_100, 3),
        "share_of_100_episodes_with_ray_start": round((ray_start + start + 100 * (per_ray - per_local)) / local_100, 3),
    }


def bench_scale(
    collect_episodes: int = 24,
    eval_episodes: int = 16,
    train_steps: int = 40,
    batch_size: int = 64,
    progress=print,
) -> dict:
    """Run the bench (module docstring); returns JSON-ready figures."""
    from fmb_core import threads as thread_budget
    from fmb_ros.bench import small_policy_checkpoint
    from policies.config import preset
    from policies.experiments.evaluate import PolicyRunSpec
    from policies.train import read_log, train
    from sim.collect import RunSpec, collect
    from sim.parallel import Executor, ray_session

    check_range("--collect-episodes", collect_episodes, 2, 100_000)
    check_range("--eval-episodes", eval_episodes, 2, 100_000)
    check_range("--train-steps", train_steps, 2, 100_000)
    check_range("--batch-size", batch_size, 2, 65_536)
    result: dict = {
        "machine": {
            "usable_cores": thread_budget.usable_cores(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
        "targets": TARGETS,
    }
    executors = {f"local_{w}": Executor("local", w) for w in (1, 2)} | {f"ray_{w}": Executor("ray", w) for w in (1, 2)}
    with tempfile.TemporaryDirectory(prefix="fmb_bench_scale_") as folder:
        folder = Path(folder)
        progress("training a small state-only grasp policy for the eval part (latency only)")
        checkpoint = small_policy_checkpoint(folder / "policy", "grasp")
        specs = {
            "collect": (RunSpec("insert"), True),
            "eval": (PolicyRunSpec(checkpoint, task="grasp", device="cpu"), False),
        }
        episodes = {"collect": collect_episodes, "eval": eval_episodes}
        figures: dict = {"collect": {}, "eval": {}}
        outcomes: dict = {"collect": {}, "eval": {}}

        def measure(label: str) -> None:
            for kind, (spec, record) in specs.items():
                progress(f"{kind} {episodes[kind]} episodes, {executors[label].describe()}")
                figures[kind][label], outcomes[kind][label] = _episodes(spec, record, episodes[kind], executors[label])

        for label in ("local_1", "local_2"):
            measure(label)
        began = time.perf_counter()
        with ray_session("", 2):
            result["ray_start_seconds"] = round(time.perf_counter() - began, 2)
            for label in ("ray_1", "ray_2"):
                measure(label)
        for kind in figures:
            figures[kind]["identical_to_serial"] = _same(outcomes[kind]["local_1"], outcomes[kind]["ray_2"])
        result |= figures
        result["ray_overhead"] = {
            kind: _overhead(figures[kind]["local_2"], figures[kind]["ray_2"], result["ray_start_seconds"])
            for kind in figures
        }
        progress(f"collect {collect_episodes} demonstrations to train on")
        collect(specs["collect"][0], folder / "demos", collect_episodes, progress=False)

        policy_config, train_config = preset("small", points=0)
        import dataclasses

        train_config = dataclasses.replace(
            train_config, steps=train_steps, batch_size=batch_size, checkpoint_every=train_steps, log_every=2
        )
        train_config = dataclasses.replace(train_config, device="cpu", warmup_steps=min(10, train_steps))
        training = {}
        curves = {}
        for devices in (1, 2):
            progress(f"train {train_steps} steps, batch {batch_size}, {devices} process(es)")
            run = folder / f"train_{devices}"
            began = time.perf_counter()
            quiet = {"progress": False, "log": lambda m: None}
            summary = train([folder / "demos"], run, policy_config, train_config, devices=devices, **quiet)
            wall = time.perf_counter() - began
            steps_per_s = train_steps / summary["seconds"]
            training[f"processes_{devices}"] = {
                "wall_seconds": round(wall, 2),
                "loop_seconds": round(summary["seconds"], 2),
                "steps_per_second": round(steps_per_s, 2),
                "windows_per_second": round(steps_per_s * batch_size, 1),
                "devices": summary.get("devices", {}),
            }
            curves[devices] = read_log(run / "train_log.csv")[1]
        training["speedup_2_processes"] = _ratio(
            training["processes_2"]["steps_per_second"], training["processes_1"]["steps_per_second"]
        )
        half = len(curves[1]) // 2
        training["loss_curves"] = {
            "logged_every": 2,
            "processes_1": [round(float(x), 4) for x in curves[1]],
            "processes_2": [round(float(x), 4) for x in curves[2]],
            "second_half_mean_ratio": _ratio(float(np.mean(curves[2][half:])), float(np.mean(curves[1][half:]))),
        }
        result["training"] = training

    def speedup(kind: str, executor: str, key: str) -> float:
        return _ratio(result[kind][f"{executor}_2"][key], result[kind][f"{executor}_1"][key])

    result["ratios"] = {
        f"{kind}_speedup_{executor}{suffix}": speedup(kind, executor, key)
        for kind in ("collect", "eval")
        for executor in ("local", "ray")
        for suffix, key in (("", "episodes_per_min"), ("_steady", "steady_episodes_per_min"))
    }
    result["ratios"]["ddp_speedup_2_processes"] = training["speedup_2_processes"]
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result
