"""`fmb bench policy`: decision latency of the policies (feature preparation + sampling).

Untrained weights time the same as trained ones, so no data is needed: a model of the requested
preset is built for the insertion task's inputs (TCP state + a 2048-point fused cloud cut to the
local cloud) and `Policy.predict` is timed on a synthetic observation.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import statistics
import time

import numpy as np

from policies.experiments.timing import step_seconds, synthetic_observation


def build_policy(preset_name: str = "small", device: str = "cpu", **overrides):
    """A Policy with untrained weights of `preset_name` for the insertion inputs."""
    from policies.common.features import MinMaxNormalizer
    from policies.config import preset
    from policies.factory import build_model
    from policies.runtime.policy import Policy

    config, _ = preset(preset_name, **overrides)
    config = dataclasses.replace(config, skills=("insert",))
    shapes = {"state": (22,), "action": (7,), "cond": (0,), "points": (config.points, 6)}
    model = build_model(config, shapes)
    norm = lambda d: MinMaxNormalizer(-np.ones(d), np.ones(d))  # noqa: E731
    return Policy(model, norm(22), norm(7), {"policy": config.to_dict()}, device)


def decision_seconds(policy, num_samples: int, repeats: int = 20, max_seconds: float = math.inf) -> list[float]:
    """Wall times [s] of `repeats` decisions (features + `num_samples` candidates in one batch;
    fewer past `max_seconds`, see `step_seconds`)."""
    rng = np.random.default_rng(0)
    history = [synthetic_observation(rng), synthetic_observation(rng)]
    return step_seconds(
        lambda i: policy.predict(history, num_samples, seed=i), policy.device, repeats, max_seconds=max_seconds
    )


def training_step_seconds(
    policy, steps: int = 20, batch_size: int = 64, tune: bool = False, max_seconds: float = math.inf
) -> list[float]:
    """Wall times [s] of `steps` AdamW steps of `policy`'s model on a synthetic batch of
    `batch_size` windows (the sizes of training; the values do not change the time). With `tune`,
    a `fmb_core.threads.ThreadTuner` over the current thread count runs as in `policies.train`, and
    only the steps after its first choice are returned. Stops early (after at least 3 returned
    steps) once `max_seconds` [s] have passed."""
    import torch

    from fmb_core.threads import ThreadTuner

    rng = np.random.default_rng(0)
    one = policy.batch([synthetic_observation(rng), synthetic_observation(rng)])
    batch = {k: v.repeat(batch_size, *([1] * (v.dim() - 1))) for k, v in one.items()}
    c = policy.config
    batch["action"] = torch.rand(batch_size, c.pred_horizon, 7, device=policy.device) * 2 - 1
    model = policy.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tuner = ThreadTuner(torch.get_num_threads(), torch.set_num_threads, probe=3, hold=10**6) if tune else None
    times = []
    began = time.perf_counter()
    try:
        for _ in range(steps):
            if len(times) >= 3 and time.perf_counter() - began > max_seconds:
                break
            t0 = time.perf_counter()
            loss = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()
            dt = time.perf_counter() - t0
            if tuner is None or tuner.choices or len(tuner.candidates) == 1:
                times.append(dt)
            if tuner is not None:
                tuner.record(dt)
    finally:
        model.eval()
    return times


def time_decision(policy, num_samples: int, repeats: int = 20) -> float:
    """Median seconds of one decision (features + `num_samples` candidates in one batch)."""
    return statistics.median(decision_seconds(policy, num_samples, repeats))


def bench_policy(repeats: int = 20) -> dict:
    """Latency table (JSON-ready; seconds) for CPU, and CUDA when present."""
    import torch

    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()},
        "cpu": {},
    }
    for label, overrides in (("small", {}), ("small_1024_points", {"points": 1024})):
        policy = build_policy("small", "cpu", **overrides)
        params = sum(p.numel() for p in policy.model.parameters())
        row = {"parameters": params, "inference_steps": policy.config.inference_steps, "points": policy.config.points}
        for n in (1, 16):
            row[f"decision_n{n}_s"] = time_decision(policy, n, repeats)
        if label == "small":  # preference selection: N = 16 candidates, implicit reward with 4 noise draws
            from policies.preference.bench import time_selection

            row["select_implicit_n16_s"] = time_selection(policy, "implicit", 16, 4, repeats)
            row["select_implicit_head_n16_s"] = time_selection(policy, "implicit", 16, 4, repeats, "head")
            row["select_explicit_n16_s"] = time_selection(policy, "explicit", 16, 4, repeats)
        bc = build_policy("small", "cpu", policy_type="bc", **overrides)
        row["bc_decision_s"] = time_decision(bc, 1, repeats)
        result["cpu"][label] = row
    if torch.cuda.is_available():
        result["cuda"] = {"device": torch.cuda.get_device_name()}
        for name in ("small", "base", "large"):
            policy = build_policy(name, "cuda")
            result["cuda"][name] = {n: time_decision(policy, n, repeats) for n in (1, 16, 64)}
            if name == "small":
                from policies.preference.bench import time_selection

                result["cuda"]["small_select_implicit_n64"] = time_selection(policy, "implicit", 64, 4, repeats)
    return result


def _ms(values: list[float]) -> dict:
    a = np.asarray(values, float) * 1000.0
    return {"n": int(a.size), "p50": round(float(np.median(a)), 1), "p99": round(float(np.percentile(a, 99)), 1)}


def decision_figures(policy, repeats: int, threads: int, max_seconds: float = math.inf) -> dict:
    """Decision latency on `threads` torch threads [ms]: N = 1 (p50, p99 of `repeats`), N = 16
    (a third as many) and implicit selection of 16 (median); each figure stops after
    `max_seconds` of timed calls (at least 3). For `fmb bench load`."""
    import torch

    from policies.preference.bench import time_selection

    torch.set_num_threads(threads)
    n1 = decision_seconds(policy, 1, repeats, max_seconds)
    n16 = decision_seconds(policy, 16, max(3, repeats // 3), max_seconds)
    select_repeats = 3 if statistics.median(n16) * 6 > max_seconds else max(3, repeats // 6)
    return {
        "threads": threads,
        "n1_ms": _ms(n1),
        "n16_ms": _ms(n16),
        "select_implicit_n16_ms": round(1000.0 * time_selection(policy, "implicit", 16, 4, select_repeats), 1),
    }


def training_figures(policy, steps: int, threads: int, tune: bool, max_seconds: float = math.inf) -> dict:
    """Training speed starting on `threads` torch threads (with `tune`, the tuner's choice; see
    `training_step_seconds`). For `fmb bench load`."""
    import torch

    torch.set_num_threads(threads)
    times = training_step_seconds(policy, steps, tune=tune, max_seconds=max_seconds)
    return {
        "threads": torch.get_num_threads() if tune else threads,
        "tuned": tune,
        "step_ms": round(1000.0 * statistics.median(times), 1),
        "steps_per_s": round(1.0 / statistics.median(times), 2),
    }
