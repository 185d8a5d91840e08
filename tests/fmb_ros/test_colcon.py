"""`colcon build` of the package in a temporary workspace (colcon from PyPI, as on a robot's ROS install)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_colcon_build_installs_the_nodes_and_launch_files(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon is not installed (it is part of the [dev] extra)")
    src = tmp_path / "src" / "fmb_ros"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    for rel in files.stdout.splitlines():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    proc = subprocess.run(
        [colcon, "build", "--event-handlers", "console_direct-"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    install = tmp_path / "install" / "fmb_ros"
    for script in ("fmb_sim_robot", "fmb_skill_server", "fmb_task_executor", "fmb_perception"):
        assert (install / "lib" / "fmb_ros" / script).is_file()  # where `ros2 run fmb_ros <script>` looks
    share = install / "share" / "fmb_ros"
    assert (share / "package.xml").is_file() and (share / "launch" / "sim.launch.py").is_file()
    assert (share / "launch" / "params" / "sim.yaml").is_file() and (
        share / "launch" / "params" / "perception.yaml"
    ).is_file()
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "fmb_ros").is_file()
