"""`fmb bench record` for a few seconds, small: the three processes over DDS, and every figure reported."""

import pytest

pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

pytestmark = [pytest.mark.graph, pytest.mark.slow]


def test_bench_record_reports_ticks_stale_steps_and_commit(tmp_path):
    from fmb_ros.bench_record import bench_record

    result = bench_record(tmp_path, seconds=3.0, cameras=("wrist",), size=32, points=64, log=lambda m: None)
    assert 25 <= result["ticks"] <= 40 and result["dropped_ticks"] == max(result["expected_ticks"] - result["ticks"], 0)
    assert result["stop_reply"].startswith("kept") and sum(result["kept_steps"]) >= 10, result
    assert result["tick_period_ms"]["median"] == pytest.approx(100.0, abs=15.0)
    assert result["commit_s"] > 0 and result["store_mb"] > 0 and 0 < result["recorder_cpu"] < 2.0
    topics = {"/joint_states", "/tcp_pose", "/tcp_twist", "/wrench", "/gripper/joint_states", "/equilibrium_pose"}
    assert set(result["stale_steps"]) <= topics | {"/gripper/command", "/camera/wrist/image_raw", "/points"}
