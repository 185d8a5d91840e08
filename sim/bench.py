"""Benchmarks for `sim`: physics rate, rendering cost, demonstrations per minute."""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _physics(env, steps: int) -> dict:
    """Hold the TCP still for `steps` physics steps; time the parts of one step."""
    backend, ctrl = env.backend, env.controller
    t_state = t_ctrl = t_step = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        s = backend.robot_state()
        t1 = time.perf_counter()
        tau = ctrl.torques(s.tcp_pose, env._target, s.jacobian, s.q, s.dq, env._q_rest, s.bias)
        t2 = time.perf_counter()
        backend.step(tau, 0.0)
        t3 = time.perf_counter()
        t_state += t1 - t0
        t_ctrl += t2 - t1
        t_step += t3 - t2
    total = t_state + t_ctrl + t_step
    return {
        "steps_per_second": steps / total,
        "real_time_factor": steps * env.config.physics.timestep / total,
        "share": {"physics": t_step / total, "robot_state": t_state / total, "controller": t_ctrl / total},
    }


def bench_sim(backend: str = "mujoco", episodes: int = 6) -> dict:
    """Measure the insertion scene on `backend` (JSON-ready dict; times in seconds)."""
    from sim.collect import RunSpec, collect
    from sim.env import make_env
    from sim.experts import make_expert
    from sim.rollout import run_episode

    result: dict = {"backend": backend, "python": platform.python_version(), "machine": platform.machine()}
    env = make_env("insert", backend)
    env.reset(seed=0)
    result["free_motion"] = _physics(env, 2000)
    # Whole expert episodes: physics with contacts, task checks and the expert, no rendering.
    expert = make_expert("insert")
    sim_time = wall = 0.0
    successes = 0
    for seed in range(episodes):
        t = time.perf_counter()
        r = run_episode(env, expert, seed)
        wall += time.perf_counter() - t
        sim_time += (r.steps * env.config.physics.substeps + 150) * env.config.physics.timestep
        successes += r.success
    result["insert_episodes"] = {
        "episodes": episodes,
        "successes": successes,
        "real_time_factor": sim_time / wall,
        "seconds_per_episode": wall / episodes,
    }
    # Rendering: the three cameras at two sizes.
    render = {}
    for size in (128, 256):
        cams = [c.resized(size, size) for c in env.config.camera_specs()]
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for cam in cams:
                env.backend.render(cam)
            times.append(time.perf_counter() - t)
        render[f"{size}px_three_cameras_seconds"] = statistics.median(times)
    result["render"] = render
    env.close()
    # Demonstrations per minute, with 1 and 2 worker processes (no cameras); enough episodes that
    # starting the worker processes (imports, model compilation: a few seconds) does not dominate.
    demos = max(4 * episodes, 24)
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            collect(RunSpec("insert", backend), Path(tmp) / "demos", demos, workers=workers, progress=False)
            result[f"demos_per_minute_workers_{workers}"] = demos / (time.perf_counter() - t) * 60
    result["demos_collected_per_measurement"] = demos
    result["note"] = "physics timestep 2 ms; an action is 50 steps; rendering is off during physics figures"
    return {k: _round(v) for k, v in result.items()}


def _round(v):
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, float | np.floating):
        return round(float(v), 4)
    return v
