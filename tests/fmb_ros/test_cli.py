"""`fmb ros` is registered without importing rclpy, so `fmb --help` works without the [ros] extra."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BLOCK_ROS = "import sys; sys.modules['rclpy'] = None; from fmb.cli import main; sys.exit(main(sys.argv[1:]))"


def run(*args):
    return subprocess.run([sys.executable, "-c", BLOCK_ROS, *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.slow
def test_help_without_rclpy():
    out = run("--help")
    assert out.returncode == 0 and "ros" in out.stdout, out.stderr
    out = run("ros", "up", "--help")
    assert out.returncode == 0 and "--params-file" in out.stdout, out.stderr


def test_up_without_rclpy_names_the_extra():
    out = run("ros", "up", "sim", "--duration", "1")
    assert out.returncode == 2
    assert "missing dependency 'rclpy'" in out.stderr and ".[ros]" in out.stderr
