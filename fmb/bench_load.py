"""`fmb bench load`: the control loop's figures on an idle machine and beside a competing load.

A robot's policy never has the CPU to itself. This bench measures, twice, the figures of
`fmb bench policy` and `fmb bench ros` plus training speed: once on the machine as it is ("idle")
and once beside `sim.load` (the simulator stepping flat out with a camera and a fused cloud, one
thread: about one core), which the bench starts and stops itself. Each figure is reported for the
stack's thread budget (`fmb_core.threads`) and, for decisions and training, for "all cores" (torch's
own default: one thread per core), which is what the budget replaces; `ratios` divides loaded by
idle.

- decisions: `small` policy (untrained weights: the time does not depend on them), N = 1 and 16
  candidates, p50 / p99 over `repeats` decisions; implicit preference selection of 16 (median).
- training: steps per second of the `small` model on a synthetic batch of 64 windows, with the
  training budget's tuner (`fmb_core.threads.ThreadTuner`) and fixed at all cores.
- ros: `fmb bench ros --small-policy` for `cycles` 10 Hz cycles (skill server in its own process,
  asynchronous inference with the default adaptive lead and inference-thread priority).
- eval (idle only): episodes per minute of whole `fmb eval` commands with `--workers 1` and `2`
  (process start included, as a user sees it) on the same small policy's grasp task.

The figures are measured, never asserted: the targets of the issue are in `targets` for reading.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fmb_core.errors import check_range

TARGETS = {
    "decision_p50_ratio": "<= 2 (loaded / idle)",
    "decision_p99_ratio": "<= 3 (loaded / idle)",
    "ros_missed_cycles_loaded": "0 in 1000 at 10 Hz with the small policy",
    "training_speed_ratio": ">= 0.4 (loaded / idle steps per second)",
    "eval_workers_speedup": ">= 1.6 (--workers 2 / --workers 1 episodes per minute)",
}


FIGURE_SECONDS = 30.0
"""Timed calls of one figure stop after this long [s] (at least 3): a starved setting still ends."""


def _eval_rate(checkpoint: str, episodes: int, workers: int) -> dict:
    """Episodes per minute of a whole `fmb eval` command (process start included)."""
    began = time.perf_counter()
    cmd = [sys.executable, "-m", "fmb", "eval", "--policy", checkpoint, "--task", "grasp"]
    cmd += ["--episodes", str(episodes), "--workers", str(workers), "--quiet"]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        from fmb_core.errors import FmbError

        raise FmbError(f"fmb eval --workers {workers} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])
    return {
        "workers": workers,
        "episodes": episodes,
        "seconds": round(seconds, 1),
        "episodes_per_min": round(60.0 * episodes / seconds, 2),
        "worker_torch_threads": result.get("threads", {}).get("worker_torch_threads", []),
    }


def bench_load(
    repeats: int = 60,
    train_steps: int = 30,
    cycles: int = 1000,
    eval_episodes: int = 40,
    ros: bool = True,
    progress=print,
) -> dict:
    """Run the bench (module docstring); returns JSON-ready figures. `cycles` 0 or `ros` False
    leaves the ROS part out, `eval_episodes` 0 the evaluation part."""
    from fmb_core import threads as thread_budget
    from policies.experiments.bench import build_policy, decision_figures, training_figures
    from sim.load import CompetingLoad

    check_range("--repeats", repeats, 3, 10_000)
    check_range("--train-steps", train_steps, 12, 10_000)
    check_range("--cycles", cycles, 0, 100_000)
    check_range("--eval-episodes", eval_episodes, 0, 10_000)
    cores = thread_budget.usable_cores()
    budget = thread_budget.configure("inference")
    policy = build_policy("small", "cpu")
    result: dict = {
        "machine": {"usable_cores": cores, "load_average_before": [round(x, 2) for x in os.getloadavg()]},
        "budget": {"inference": budget.threads, "training": thread_budget.plan_threads("training", cores).threads},
        "targets": TARGETS,
    }
    with tempfile.TemporaryDirectory(prefix="fmb_bench_load_") as folder:
        checkpoint = ""
        if (ros and cycles) or eval_episodes:
            from fmb_ros.bench import small_policy_checkpoint

            progress("training a small state-only grasp policy for the ROS and eval parts (latency only)")
            checkpoint = small_policy_checkpoint(Path(folder), "grasp")
        for phase in ("idle", "loaded"):
            figures: dict = {}
            with CompetingLoad(enabled=phase == "loaded") as load:
                progress(f"[{phase}] decisions (budget {budget.threads} thread, then all {cores} cores)")
                figures["decisions"] = {
                    "budget": decision_figures(policy, repeats, budget.threads, FIGURE_SECONDS),
                    "all_cores": decision_figures(policy, repeats, cores, FIGURE_SECONDS),
                }
                progress(f"[{phase}] training steps (tuned budget, then fixed at all cores)")
                training = result["budget"]["training"]
                figures["training"] = {
                    "budget": training_figures(policy, train_steps, training, True, FIGURE_SECONDS),
                    "all_cores": training_figures(policy, train_steps, cores, False, FIGURE_SECONDS),
                }
                thread_budget.apply_threads(budget)
                if ros and cycles:
                    from fmb_ros.bench import bench_ros

                    progress(f"[{phase}] {cycles} ROS cycles at 10 Hz with the small policy")
                    figures["ros"] = bench_ros(cycles, checkpoint, "grasp", timeout=120.0 + cycles * 0.5)
                if eval_episodes and phase == "idle":
                    progress(f"[{phase}] fmb eval, {eval_episodes} episodes, --workers 1 and 2")
                    figures["eval"] = {f"workers_{w}": _eval_rate(checkpoint, eval_episodes, w) for w in (1, 2)}
                if phase == "loaded":
                    figures["load_was_running"] = load.running
            figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            result[phase] = figures
    result["ratios"] = _ratios(result["idle"], result["loaded"])
    return result


def _ratios(idle: dict, loaded: dict) -> dict:
    def ratio(a, b):
        return round(a / b, 2) if b else None

    out = {}
    for which in ("budget", "all_cores"):
        di, dl = idle["decisions"][which], loaded["decisions"][which]
        out[f"decision_{which}"] = {
            "n1_p50": ratio(dl["n1_ms"]["p50"], di["n1_ms"]["p50"]),
            "n1_p99": ratio(dl["n1_ms"]["p99"], di["n1_ms"]["p99"]),
            "n16_p50": ratio(dl["n16_ms"]["p50"], di["n16_ms"]["p50"]),
            "select_implicit_n16": ratio(dl["select_implicit_n16_ms"], di["select_implicit_n16_ms"]),
        }
        out[f"training_speed_{which}"] = ratio(
            loaded["training"][which]["steps_per_s"], idle["training"][which]["steps_per_s"]
        )
    if "ros" in idle and "ros" in loaded:
        out["ros_missed_cycles"] = {"idle": idle["ros"]["missed_cycles"], "loaded": loaded["ros"]["missed_cycles"]}
        out["ros_late_chunks"] = {"idle": idle["ros"]["late_chunks"], "loaded": loaded["ros"]["late_chunks"]}
    if "eval" in idle:
        e = idle["eval"]
        out["eval_workers_speedup"] = ratio(e["workers_2"]["episodes_per_min"], e["workers_1"]["episodes_per_min"])
    return out
