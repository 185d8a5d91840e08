"""Simulation of FMB tasks: one Gymnasium environment API over MuJoCo and PyBullet backends.

    from sim import make_env
    env = make_env("insert", backend="mujoco", seed=0)

Depends on `cad` only; never imports torch or rclpy. Also home to the ROS-free cores that the ROS
nodes wrap and `fmb eval` shares: `sim.limits` (the action limits and workspace, one definition),
`sim.safety` (the command filter) and `sim.perception` (pose estimation by CAD-model registration).
Rendering is headless (EGL) unless MUJOCO_GL says otherwise; the variable is set here, before MuJoCo
is imported. The environment is imported on first use, so `fmb cad ...` works with only the [cad]
extra installed.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

__all__ = ["EnvConfig", "FmbEnv", "make_env"]


def __getattr__(name):
    if name in __all__:
        from sim import env

        return getattr(env, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
