"""Timing helpers of the benchmarks: median wall time of a step (CUDA-synchronised) and a synthetic
observation to time decisions on. Used by `fmb bench policy` (policies.experiments.bench) and by the selection
latency (policies.preference.bench)."""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from sim.observation import TCP_POSE


def synthetic_observation(rng: np.random.Generator, cloud: int = 2048) -> dict:
    """An insertion observation of random values (TCP pose, wrench, gripper, a `cloud`-point fused
    cloud around the TCP): untrained and trained weights time the same on it."""
    tcp = np.array([0.5, 0.0, 0.25, 1.0, 0.0, 0.0, 0.0], np.float32)
    points = np.c_[tcp[:3] + rng.uniform(-0.15, 0.15, (cloud, 3)), rng.uniform(0, 1, (cloud, 3))]
    return {
        TCP_POSE: tcp,
        "tcp_vel": np.zeros(6, np.float32),
        "wrench": rng.normal(size=6).astype(np.float32),
        "gripper": np.array([0.02], np.float32),
        "points": points.astype(np.float32),
    }


def median_seconds(step, device: str, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of `step(i)` over `repeats` calls after `warmup` untimed ones (CUDA
    work is synchronised on both sides of each call)."""
    return statistics.median(step_seconds(step, device, repeats, warmup))


def step_seconds(step, device: str, repeats: int = 20, warmup: int = 3, max_seconds: float = math.inf) -> list[float]:
    """Wall times [s] of `step(i)` over `repeats` calls after `warmup` untimed ones (CUDA work
    is synchronised on both sides of each call); fewer (at least 3) once `max_seconds` [s] of
    timed calls have passed, so that a figure on a starved machine still ends."""
    import torch

    times = []
    for i in range(repeats + warmup):
        if len(times) >= 3 and sum(times) > max_seconds:
            break
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(i)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times
