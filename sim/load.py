"""A controlled competing load for benchmarks: a robot's other work, in a process of its own.

    python -m sim.load --seconds 120            # until killed, or 120 s at most

It keeps about one core busy the way a robot's neighbours do: the simulator stepping flat out
(random actions, reset at every episode's end) with a camera rendered and a point cloud fused
at every step (the perception front end). It computes with one thread (`fmb_core.threads`, rollout
budget), so it takes one core and not the whole machine, and it stops by itself after `seconds`
so that a benchmark that dies never leaves it running. `fmb bench load` starts and stops it
(`CompetingLoad`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from fmb_core.errors import check_range


def run_load(seconds: float, task: str = "insert", render: bool = True, seed: int = 0) -> dict:
    """Step `task`'s environment for `seconds` [s] (with `render`, one camera and a fused cloud
    in every observation); returns how much work was done."""
    from fmb_core import threads
    from sim.env import make_env
    from sim.exceptions import SimError

    check_range("seconds", seconds, 0.1, 86_400.0, unit="s")
    threads.configure("rollout")
    cameras = ("side_1",) if render else ()
    env = make_env(task, "mujoco", seed=seed, cameras=cameras, point_cloud=1024 if render else 0)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    end = time.monotonic() + seconds
    steps = episodes = 0
    while time.monotonic() < end:
        action = np.r_[rng.uniform(-0.01, 0.01, 6), float(rng.random() < 0.5)]
        try:
            _, _, terminated, truncated, _ = env.step(action)
        except SimError:  # random pushes can make the physics blow up: a new episode, as a user would
            terminated = truncated = True
        steps += 1
        if terminated or truncated:
            episodes += 1
            env.reset(seed=seed + episodes)
    env.close()
    return {"seconds": seconds, "steps": steps, "episodes": episodes, "render": render}


class CompetingLoad:
    """`python -m sim.load` in a child process while the `with` block runs.

    Args:
        seconds: the child's own time limit [s] (it also stops when the block ends).
        enabled: False makes the block a no-op (the idle side of a comparison).
    """

    def __init__(self, seconds: float = 1800.0, enabled: bool = True):
        self.seconds = check_range("seconds", seconds, 1.0, 86_400.0, unit="s")
        self.enabled = enabled
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> CompetingLoad:
        if self.enabled:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sim.load", "--seconds", str(self.seconds)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            time.sleep(3.0)  # past its imports: the load is running when the block starts
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.load", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="run this long at most [s] (default 60)")
    parser.add_argument("--task", default="insert", help="task whose scene is stepped (default insert)")
    parser.add_argument("--no-render", action="store_true", help="physics only (no camera, no cloud)")
    args = parser.parse_args(argv)
    print(json.dumps(run_load(args.seconds, args.task, not args.no_render)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
