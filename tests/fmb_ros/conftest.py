"""Fixtures shared by the in-process ROS 2 tests."""

import os

import pytest


@pytest.fixture
def context():
    """An rclpy context of its own on loopback, in a DDS domain apart from parallel test runs."""
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=100 - os.getpid() % 30)
    yield ctx
    rclpy.try_shutdown(context=ctx)
