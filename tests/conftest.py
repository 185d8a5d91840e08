"""Test-wide settings, applied before any test module imports a simulator."""

import os

# Headless rendering through EGL (Mesa on CPU-only machines); must precede `import mujoco`.
os.environ.setdefault("MUJOCO_GL", "egl")
# Keep generated simulator assets out of the user's cache.
os.environ.setdefault("FMB_CACHE", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "fmb"))
