"""Fixtures shared by the in-process ROS 2 tests."""

import os
import signal

import pytest

from tests.fmb_ros.dds import ros_domain_id

# The DDS tests stop their nodes with SIGINT, as a terminal or `ros2 launch` does. A suite started
# as a background job (`nohup ... &`) inherits SIGINT ignored, and every node it starts would too
# (Python then installs no KeyboardInterrupt handler): each stop would wait out its grace period
# and kill. Handling SIGINT here gives the children the default disposition again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def context():
    """An rclpy context of its own on loopback, in a DDS domain apart from parallel test runs."""
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=ros_domain_id())
    yield ctx
    rclpy.try_shutdown(context=ctx)
