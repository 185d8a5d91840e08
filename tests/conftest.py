"""Test-wide settings, applied before any test module imports a simulator."""

import os

# Headless rendering through EGL (Mesa on CPU-only machines); must precede `import mujoco`.
os.environ.setdefault("MUJOCO_GL", "egl")
# Keep generated simulator assets out of the user's cache.
os.environ.setdefault("FMB_CACHE", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "fmb"))
# pytest-xdist workers are sibling processes sharing the cores: each computes with its share, as
# the stack's own evaluation workers do (fmb_core.threads), instead of every torch test taking all
# cores and starving the real-time ROS graphs running beside it. FMB_THREADS set by hand wins.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT") and "FMB_THREADS" not in os.environ:
    from fmb_core.threads import ENV_OVERRIDE, usable_cores

    os.environ[ENV_OVERRIDE] = str(max(1, usable_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
