"""DDS domains for the ROS tests: one of its own for every test that starts nodes, so that tests
running at once (pytest-xdist workers, or a second test run on the machine) never see each
other's nodes."""

from __future__ import annotations

import itertools
import os

DOMAINS = 100
"""Domains 1-100 are used (Fast DDS accepts 0-232; ROS recommends 0-101 on Linux)."""

_calls = itertools.count()


def ros_domain_id() -> int:
    """A domain distinct from every other call's in this test run, across xdist workers too: each
    worker draws from its own block of DOMAINS / workers, and the whole run is shifted by its
    controller's process id so that two runs at once rarely meet."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker.startswith("gw") else 0
    block = DOMAINS // max(workers, 1)
    shift = os.getppid() if worker else os.getpid()
    return 1 + (shift + index * block + next(_calls) % block) % DOMAINS
