"""`fmb bench policy`: decision latency of the policies (feature preparation + sampling).

Untrained weights time the same as trained ones, so no data is needed: a model of the requested
preset is built for the insertion task's inputs (TCP state + a 2048-point fused cloud cut to the
local cloud) and `Policy.predict` is timed on a synthetic observation.
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import time

import numpy as np


def _observation(rng: np.random.Generator, cloud: int = 2048) -> dict:
    tcp = np.array([0.5, 0.0, 0.25, 1.0, 0.0, 0.0, 0.0], np.float32)
    points = np.c_[tcp[:3] + rng.uniform(-0.15, 0.15, (cloud, 3)), rng.uniform(0, 1, (cloud, 3))]
    return {
        "tcp_pose": tcp,
        "tcp_vel": np.zeros(6, np.float32),
        "wrench": rng.normal(size=6).astype(np.float32),
        "gripper": np.array([0.02], np.float32),
        "points": points.astype(np.float32),
    }


def build_policy(preset_name: str = "small", device: str = "cpu", **overrides):
    """A Policy with untrained weights of `preset_name` for the insertion inputs."""
    from policies.config import preset
    from policies.features import MinMaxNormalizer
    from policies.models import build_model
    from policies.policy import Policy

    config, _ = preset(preset_name, **overrides)
    config = dataclasses.replace(config, skills=("insert",))
    shapes = {"state": (22,), "action": (7,), "cond": (0,), "points": (config.points, 6)}
    model = build_model(config, shapes)
    norm = lambda d: MinMaxNormalizer(-np.ones(d), np.ones(d))  # noqa: E731
    return Policy(model, norm(22), norm(7), {"policy": config.to_dict()}, device)


def median_seconds(step, device: str, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of `step(i)` over `repeats` calls after `warmup` untimed ones (CUDA
    work is synchronised on both sides of each call)."""
    import torch

    times = []
    for i in range(repeats + warmup):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(i)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_decision(policy, num_samples: int, repeats: int = 20) -> float:
    """Median seconds of one decision (features + `num_samples` candidates in one batch)."""
    rng = np.random.default_rng(0)
    history = [_observation(rng), _observation(rng)]
    return median_seconds(lambda i: policy.predict(history, num_samples, seed=i), policy.device, repeats)


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
