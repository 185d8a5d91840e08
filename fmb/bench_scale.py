"""`fmb bench scale`: what more workers and more training processes buy on this machine.

- collect: episodes per minute of `collect` (scripted insertions, no cameras) with 1 and 2 workers,
  as local processes (`--executor local`; 1 = in this process) and as Ray actors (a local Ray
  instance started once for the bench; its start is reported apart, `ray_start_seconds`). Every
  figure times a whole call, worker start included, as a user sees it. The stores of the serial
  run and of 2 Ray actors are compared episode for episode (`identical_to_serial`).
- eval: the same for `fmb eval` of a small state-only grasp policy (trained 20 steps: latency only).
- ray_overhead: per episode, (Ray seconds - local seconds) / episodes with 2 workers, and that as a
  share of the local run (the issue's target: <= 5 % of a 100-episode evaluation).
- training: `fmb train` of the small preset on the collected demonstrations for `train_steps` steps
  at the same effective batch with 1 process and with 2 gloo processes (`--devices 2`): steps and
  windows per second (training loop only, process start apart), and the loss curves (train_log.csv)
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


def _timed(call) -> tuple[float, object]:
    began = time.perf_counter()
    out = call()
    return time.perf_counter() - began, out


def _rate(seconds: float, episodes: int) -> dict:
    return {"seconds": round(seconds, 2), "episodes": episodes, "episodes_per_min": round(60.0 * episodes / seconds, 2)}


def _same_stores(a: Path, b: Path) -> bool:
    from sim.store import EpisodeStore

    def episodes(path):
        store = EpisodeStore.open(path)
        out = {}
        for index in store.episode_indices():
            meta = store.load_meta(index)
            out[meta["seed"]] = (meta["success"], store.load(index, ["action"]).data["action"])
        return out

    ea, eb = episodes(a), episodes(b)
    return sorted(ea) == sorted(eb) and all(ea[s][0] == eb[s][0] and np.array_equal(ea[s][1], eb[s][1]) for s in ea)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


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
    from policies.experiments.evaluate import PolicyRunSpec, evaluate
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
    local = {w: Executor("local", w) for w in (1, 2)}
    with tempfile.TemporaryDirectory(prefix="fmb_bench_scale_") as folder:
        folder = Path(folder)
        collect_spec = RunSpec("insert")
        progress("training a small state-only grasp policy for the eval part (latency only)")
        checkpoint = small_policy_checkpoint(folder / "policy", "grasp")
        eval_spec = PolicyRunSpec(checkpoint, task="grasp", device="cpu")

        def run_collect(label, executor):
            progress(f"collect {collect_episodes} episodes, {executor.describe()}")
            seconds, _ = _timed(
                lambda: collect(collect_spec, folder / label, collect_episodes, progress=False, executor=executor)
            )
            return _rate(seconds, collect_episodes)

        def run_eval(executor):
            progress(f"eval {eval_episodes} episodes, {executor.describe()}")
            seconds, out = _timed(lambda: evaluate(eval_spec, eval_episodes, progress=False, executor=executor))
            return _rate(seconds, eval_episodes) | {"successes": out["overall"]["successes"]}

        collect_rates = {f"local_{w}": run_collect(f"local_{w}", e) for w, e in local.items()}
        eval_rates = {f"local_{w}": run_eval(e) for w, e in local.items()}
        began = time.perf_counter()
        with ray_session("", 2):
            result["ray_start_seconds"] = round(time.perf_counter() - began, 2)
            for w in (1, 2):
                collect_rates[f"ray_{w}"] = run_collect(f"ray_{w}", Executor("ray", w))
                eval_rates[f"ray_{w}"] = run_eval(Executor("ray", w))
        result["collect"] = collect_rates
        result["collect"]["identical_to_serial"] = _same_stores(folder / "local_1", folder / "ray_2")
        result["eval"] = eval_rates
        result["ray_overhead"] = {
            kind: {
                "seconds_per_episode": round(
                    (r["ray_2"]["seconds"] - r["local_2"]["seconds"]) / r["ray_2"]["episodes"], 3
                ),
                "share_of_local": round(r["ray_2"]["seconds"] / r["local_2"]["seconds"] - 1.0, 3),
            }
            for kind, r in (("collect", collect_rates), ("eval", eval_rates))
        }
        result["ray_overhead"]["start_seconds_per_episode_of_a_100_episode_run"] = round(
            result["ray_start_seconds"] / 100, 3
        )

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
            summary = train([folder / "local_1"], run, policy_config, train_config, devices=devices, **quiet)
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
    result["ratios"] = {
        "collect_speedup_local": _ratio(
            collect_rates["local_2"]["episodes_per_min"], collect_rates["local_1"]["episodes_per_min"]
        ),
        "collect_speedup_ray": _ratio(
            collect_rates["ray_2"]["episodes_per_min"], collect_rates["ray_1"]["episodes_per_min"]
        ),
        "eval_speedup_local": _ratio(
            eval_rates["local_2"]["episodes_per_min"], eval_rates["local_1"]["episodes_per_min"]
        ),
        "eval_speedup_ray": _ratio(eval_rates["ray_2"]["episodes_per_min"], eval_rates["ray_1"]["episodes_per_min"]),
        "ddp_speedup_2_processes": training["speedup_2_processes"],
    }
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result
