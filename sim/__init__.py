"""Simulation of FMB tasks: one environment API, MuJoCo and PyBullet backends (issue: `sim/`).

Depends on `cad` only; never imports torch or rclpy.
"""
