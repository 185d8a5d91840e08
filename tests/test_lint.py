"""Linters run as tests (as in ros2/examples): ruff over the whole repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the [dev] extra"
    proc = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_layers_do_not_import_heavier_layers():
    """cad and sim never import torch; nothing but fmb_ros imports rclpy; cad never imports sim."""
    forbidden = {
        "cad": ("torch", "rclpy", "sim", "policies", "fmb_ros", "mujoco", "pybullet"),
        "sim": ("torch", "rclpy", "policies", "fmb_ros"),
        "policies": ("rclpy", "fmb_ros"),
        "fmb": ("torch", "rclpy"),
    }
    bad = []
    for package, names in forbidden.items():
        for path in (ROOT / package).rglob("*.py"):
            for line in path.read_text().splitlines():
                s = line.strip()
                for name in names:
                    if s.startswith((f"import {name}", f"from {name} ", f"from {name}.")):
                        bad.append(f"{path.relative_to(ROOT)}: {s}")
    assert not bad, bad


def test_every_package_folder_is_installed():
    """setup.py's find_packages(include=...) must cover every folder with an __init__.py: a
    non-editable install (pip install .[cad]) ships only those."""
    import ast

    from setuptools import find_packages

    call = next(
        node
        for node in ast.walk(ast.parse((ROOT / "setup.py").read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "find_packages"
    )
    include_src = ast.unparse(next(k.value for k in call.keywords if k.arg == "include"))
    include = eval(include_src, {"PACKAGE_NAME": "fmb_ros"})  # noqa: S307 - our own setup.py
    shipped = set(find_packages(str(ROOT), include=include))
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("fmb", "cad", "sim", "policies", "fmb_ros")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert folders and folders <= shipped, folders - shipped
