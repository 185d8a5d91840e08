"""Perception over real DDS on loopback: the simulated robot renders its side cameras and publishes the
fused cloud; `fmb_perception`, a separate process, publishes the board, target hole and peg poses; this
test (a third node) compares them with the simulator's ground truth."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
pytest.importorskip("open3d", reason="perception needs open3d: pip install -e .[perception]")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseArray, PoseStamped  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from fmb_ros import convert, qos  # noqa: E402
from sim.perception import matrix_to_pose, pose_error, pose_to_matrix  # noqa: E402
from tests.fmb_ros.dds import ros_domain_id  # noqa: E402
from tests.fmb_ros.processes import start_node, stop_node  # noqa: E402

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "launch" / "params" / "perception.yaml"


@pytest.mark.slow
def test_perception_node_publishes_poses_that_match_the_simulator(tmp_path):
    domain = ros_domain_id()
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"),
        ROS_LOG_DIR=str(tmp_path),
    )
    # A slow simulator is enough: the scene stands still, and rendering is the expensive part.
    sim = start_node(
        "fmb_ros.sim_robot", "--params-file", str(PARAMS), "-p", "task:=vertical_chain", "-p", "seed:=4",
        "-p", "real_time_factor:=0.2", env=env, log=tmp_path / "sim.log",
    )  # fmt: skip
    perception = start_node(
        "fmb_ros.perception_node", "--params-file", str(PARAMS), "-p", "rate:=1.0",
        env=env, log=tmp_path / "perception.log",
    )  # fmt: skip
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("perception_client", context=ctx)
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    got: dict[str, list] = {k: [] for k in ("board", "peg", "hole", "holes", "status", "truth", "episode")}
    for key, topic, msg_type, profile in (
        ("board", "/fmb_perception/board_pose", PoseStamped, qos.STATE),
        ("peg", "/fmb_perception/peg_pose", PoseStamped, qos.STATE),
        ("hole", "/fmb_perception/target_hole", PoseStamped, qos.STATE),
        ("holes", "/fmb_perception/hole_poses", PoseArray, qos.STATE),
        ("status", "/fmb_perception/status", DiagnosticStatus, qos.STATE),
        ("truth", "/ground_truth/object_poses", PoseArray, qos.STATE),
        ("episode", "/ground_truth/episode", String, qos.LATCHED),
    ):
        node.create_subscription(msg_type, topic, got[key].append, profile)

    def logs() -> str:
        return "\n".join(f"--- {n}\n{(tmp_path / n).read_text()[-2000:]}" for n in ("sim.log", "perception.log"))

    try:

        def estimated() -> bool:
            return any("board_found" in convert.status_values(m) for m in got["status"])

        end = time.monotonic() + 90.0
        while time.monotonic() < end and not (got["board"] and got["peg"] and got["hole"] and estimated()):
            executor.spin_once(timeout_sec=0.1)
            assert sim.poll() is None and perception.poll() is None, logs()
        assert got["board"] and got["peg"] and got["hole"], f"no poses published\n{logs()}"
        episode = convert.from_json(got["episode"][-1].data)
        truth = dict(zip(episode["object_keys"], convert.pose_array_arrays(got["truth"][-1])))
        board, frame, _ = convert.pose_stamped_array(got["board"][-1])
        assert frame == "panda_link0"
        t, r = pose_error(board, truth["board"])
        assert t < 0.003 and r < np.radians(2.0), (t, np.degrees(r))
        status = next(v for m in reversed(got["status"]) if "board_found" in (v := convert.status_values(m)))
        assert status["board_found"] == "true" and status["peg"] == episode["peg"]
        from sim.perception import scene_models

        frame_of_hole = scene_models(episode["peg"])[0].frames[episode["hole"]]
        true_hole = matrix_to_pose(pose_to_matrix(truth["board"]) @ pose_to_matrix(frame_of_hole))
        hole, _, _ = convert.pose_stamped_array(got["hole"][-1])
        assert pose_error(hole, true_hole)[0] < 0.003
        assert len(got["holes"][-1].poses) == 9
        peg, _, _ = convert.pose_stamped_array(got["peg"][-1])
        assert np.linalg.norm(peg[:3] - truth["peg"][:3]) < 0.01  # origin at the base (symmetric turns move it)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        stop_node(perception)
        stop_node(sim)
    for proc, name in ((sim, "sim.log"), (perception, "perception.log")):
        assert proc.returncode in (0, -signal.SIGINT), (tmp_path / name).read_text()[-3000:]
