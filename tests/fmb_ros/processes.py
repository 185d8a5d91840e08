"""ROS nodes as separate processes for the DDS tests: start one with its `--ros-args`, stop it
the way a terminal does (SIGINT, then kill after a grace period)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def start_node(module: str, *ros_args: str, env: dict, log: Path) -> subprocess.Popen:
    """`python -m module --ros-args ...` with stdout and stderr going to `log`."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, "--ros-args", *ros_args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop_node(proc: subprocess.Popen, grace: float = 15.0) -> int:
    """Interrupt `proc`, kill it when it has not exited within `grace` [s]; its return code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
