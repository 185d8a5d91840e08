"""Nodes built in-process (no other process): bad parameters, console scripts, the `fmb ros` command."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")

from rclpy.parameter import Parameter  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def context():
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=100 - os.getpid() % 30)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def test_missing_checkpoint_keeps_the_node_up_and_refuses_goals(context):
    from fmb_ros import convert
    from fmb_ros.skill_server import SkillServerNode

    overrides = [Parameter("checkpoint", value="/nonexistent/run")]
    node = SkillServerNode("bad_skill", context=context, parameter_overrides=overrides)
    try:
        assert node.run is None
        assert "no such checkpoint" in node.error and "/nonexistent/run" in node.error
        results = []
        node.publish_result = lambda level, state, message: results.append((level, state, message))
        node.on_goal(convert.pose_stamped_msg([0.5, 0, 0.1, 0, 0, 0, 1], "panda_link0", 0.0))
        assert results and results[0][:2] == ("error", "rejected") and "no such checkpoint" in results[0][2]
        node.on_tick()  # still ticks, publishing an error status
    finally:
        node.destroy_node()


def test_bad_safety_limit_names_the_parameter(context):
    from fmb.errors import ParameterError
    from fmb_ros.skill_server import SkillServerNode

    with pytest.raises(ParameterError, match="max_step_translation"):
        SkillServerNode("bad", context=context, parameter_overrides=[Parameter("max_step_translation", value=3.0)])


def test_sim_node_refuses_a_bad_seed_at_run_time(context):
    from fmb_ros.sim_robot import SimRobotNode

    node = SimRobotNode(context=context)
    try:
        result = node.set_parameters([Parameter("seed", value=-1)])[0]
        assert not result.successful and "seed must be an integer >= 0" in result.reason
        assert node.set_parameters([Parameter("seed", value=5)])[0].successful
        assert not node.set_parameters([Parameter("task", value="insert")])[0].successful  # read-only
        response = node.on_reset(None, Trigger.Response())
        assert response.success and response.message.startswith("seed 5")
    finally:
        node.destroy_node()


def test_console_scripts_exist():
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts = next(
        ast.literal_eval(k.value)["console_scripts"]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup"
        for k in node.keywords
        if k.arg == "entry_points"
    )
    import importlib

    names = {}
    for line in scripts:
        name, target = (s.strip() for s in line.split("="))
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), line
        names[name] = module
    assert names["fmb_sim_robot"] == "fmb_ros.sim_robot" and names["fmb_skill_server"] == "fmb_ros.skill_server"


def test_fmb_ros_command_is_registered_and_checks_its_flags(capsys):
    from fmb.cli import main

    assert main(["ros", "up", "sim", "--real-time-factor", "0"]) == 2
    assert "--real-time-factor=0 is out of range" in capsys.readouterr().err
    assert main(["ros", "up", "sim", "--params-file", "/nonexistent.yaml"]) == 2
    assert "no such file" in capsys.readouterr().err
