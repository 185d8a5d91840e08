"""Launch files and parameter files, checked structurally (`ros2 launch` is not on PyPI): every
executable is a console script, every parameter file parses, every parameter in them is declared
by its node with a value of the declared type, and the nodes start with them."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import yaml

from tests.fmb_ros.dds import ros_domain_id

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
PARAM_FILES = sorted((ROOT / "launch" / "params").glob("*.yaml"))
BUILTIN = {"use_sim_time": False, "start_type_description_service": True}


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup":
            for k in node.keywords:
                if k.arg == "entry_points":
                    lines = ast.literal_eval(k.value)["console_scripts"]
                    return {n.strip(): t.strip() for n, t in (line.split("=") for line in lines)}
    raise AssertionError("no console_scripts in setup.py")


EXECUTABLE_MODULES = {
    "fmb_sim_robot": "fmb_ros.sim_robot",
    "fmb_skill_server": "fmb_ros.skill_server",
    "fmb_perception": "fmb_ros.perception_node",
    "fmb_cloud_fusion": "fmb_ros.cloud_fusion_node",
    "fmb_task_executor": "fmb_ros.task_executor",
    "fmb_recorder": "fmb_ros.recorder_node",
    "fmb_teleop": "fmb_ros.teleop_node",
}


def _executable_of(node_name: str) -> str:
    """The executable that runs the node called `node_name` (skill servers are `<skill>_skill`)."""
    name = node_name.lstrip("/")
    if name.endswith("_skill"):
        return "fmb_skill_server"
    if name in EXECUTABLE_MODULES:
        return name
    raise AssertionError(f"parameter file names an unknown node {node_name!r}")


def _declared_by(executable: str) -> dict:
    import importlib

    parameters = importlib.import_module(EXECUTABLE_MODULES[executable]).PARAMETERS
    return {**BUILTIN, **{k: v[0] for k, v in parameters.items()}}


def _declared(node_name: str) -> dict:
    """name -> default of the parameters the node called `node_name` declares."""
    if node_name == "/**":
        return dict(BUILTIN)
    return _declared_by(_executable_of(node_name))


def _launch_nodes(path: Path) -> list[dict]:
    """The keyword arguments of every Node(...) call in a launch file, as AST nodes."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Node":
            calls.append({k.arg: k.value for k in node.keywords})
    return calls


def test_there_are_launch_and_parameter_files():
    assert LAUNCH_FILES and PARAM_FILES
    assert set(EXECUTABLE_MODULES) <= set(_console_scripts())
    started = {ast.literal_eval(k["executable"]) for path in LAUNCH_FILES for k in _launch_nodes(path)}
    assert started == set(EXECUTABLE_MODULES), "every node is started by a launch file"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_executables_are_console_scripts(path):
    pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    scripts = _console_scripts()
    nodes = _launch_nodes(path)
    assert nodes, f"{path.name} starts no Node"
    for kwargs in nodes:
        assert ast.literal_eval(kwargs["package"]) == "fmb_ros"
        executable = ast.literal_eval(kwargs["executable"])
        assert executable in scripts, f"{path.name}: {executable!r} is not a console script ({sorted(scripts)})"
        # Inline parameter dicts name declared parameters only.
        declared = _declared_by(executable)
        for item in getattr(kwargs.get("parameters"), "elts", []):
            if isinstance(item, ast.Dict):
                for key in item.keys:
                    assert ast.literal_eval(key) in declared, f"{path.name}: {executable} has no parameter {key}"


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_parameter_files_name_declared_parameters_with_their_types(path):
    pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and data
    nodes = [n for n in data if n != "/**"]
    for node_name, section in data.items():
        params = section["ros__parameters"]
        declared = _declared(node_name)
        if node_name == "/**":  # every node the file configures gets it: one of them must declare each name
            declared = {**{k: v for n in nodes for k, v in _declared(n).items()}, **declared}
        for name, value in params.items():
            assert name in declared, f"{path.name}: {node_name} declares no parameter {name!r}"
            default = declared[name]
            if isinstance(default, bool) or isinstance(value, bool):
                ok = isinstance(value, bool) and isinstance(default, bool)
            elif isinstance(default, list):
                ok = isinstance(value, list) and (not default or all(type(v) is type(default[0]) for v in value))
            else:
                ok = type(value) is type(default)
            assert ok, f"{path.name}: {node_name}.{name} = {value!r} is not of the declared type of {default!r}"


def test_nodes_start_with_the_sim_parameter_file():
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from fmb_ros.sim_robot import SimRobotNode
    from fmb_ros.skill_server import SkillServerNode

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    path = ROOT / "launch" / "params" / "sim.yaml"
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=ctx, domain_id=ros_domain_id())
    nodes = []
    try:
        nodes.append(SimRobotNode(context=ctx))
        nodes.append(SkillServerNode("grasp_skill", context=ctx))
        sim, skill = nodes
        assert sim.params["task"] == "grasp"
        assert skill.params["skill"] == "grasp" and skill.get_parameter("use_sim_time").value is True
        from sim.limits import DEFAULT_WORKSPACE

        assert skill.safety.limits.workspace == DEFAULT_WORKSPACE  # sim.yaml leaves the simulator's limits
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_skill_starts_with_the_robot_parameter_file():
    """On the robot file the skill takes the driver's topic names and limits; without the trained
    checkpoint it stays up and says so. A skill server the file has no section for (an insert
    server started with --skills or skill:=insert) gets the same from the file's `/**`."""
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from rclpy.parameter import Parameter

    from fmb_ros.skill_server import SkillServerNode

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    path = ROOT / "launch" / "params" / "robot.yaml"
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=ctx, domain_id=ros_domain_id())
    nodes = []
    try:
        nodes.append(SkillServerNode("grasp_skill", context=ctx))
        node = nodes[0]
        assert node.params["base_frame"] == "fr3_link0" and node.params["ground_truth_namespace"] == ""
        assert node.params["equilibrium_pose_topic"].endswith("/equilibrium_pose")
        assert node.safety.limits.max_step_translation == 0.03
        assert node.run is None and "runs/grasp_dp" in node.error
        overrides = [Parameter("skill", value="insert")]
        nodes.append(SkillServerNode("insert_skill", context=ctx, parameter_overrides=overrides))
        insert = nodes[1]
        for name in ("base_frame", "tcp_frame", "tcp_pose_topic", "equilibrium_pose_topic", "workspace_low"):
            assert insert.params[name] == node.params[name], name
        assert insert.params["tcp_frame"] == "fr3_hand_tcp" and insert.safety.limits.max_step_translation == 0.03
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_a_chains_learned_rotate_and_insert_servers_approach_as_fmb_eval_does(tmp_path):
    """`fmb ros up sim` and `sim.launch.py` turn `approach` on for a chain task's rotate and insert
    stages run by a policy (fmb eval's planned approach), not for experts, other skills or
    single-skill tasks, and leave it to a parameter file that sets it."""
    from fmb_ros.cli import planned_approach

    assert planned_approach(None, "vertical_chain", "insert", "runs/insert")
    assert planned_approach(None, "vertical_chain", "rotate", "runs/rotate")
    assert not planned_approach(None, "vertical_chain", "insert", "")  # the scripted expert moves itself
    assert not planned_approach(None, "vertical_chain", "grasp", "runs/grasp")
    assert not planned_approach(None, "insert", "insert", "runs/insert")  # its own task starts above the hole
    custom = tmp_path / "custom.yaml"
    custom.write_text("insert_skill:\n  ros__parameters:\n    approach: false\n")
    assert not planned_approach(custom, "vertical_chain", "insert", "runs/insert")


def test_the_skill_servers_read_the_held_peg_perception_publishes(tmp_path):
    """`fmb ros up sim --perception`, `sim.launch.py perception:=true`, `robot.launch.py` and `fmb ros
    up robot` give every skill server fmb_perception's `~/held_peg` as its `held_peg_topic` (none
    without perception, the parameter file's where it names one), and the task executor too; the
    frame perception stamps it with is the one the skill servers take it in."""
    from fmb_ros.cli import HELD_PEG_TOPIC, held_peg_topic

    params = ROOT / "launch" / "params"
    perception = {
        name: yaml.safe_load((params / name).read_text())["fmb_perception"]["ros__parameters"]
        for name in ("perception.yaml", "robot.yaml")
    }
    for section in perception.values():
        assert "/fmb_perception/" + section["held_peg_topic"].removeprefix("~/") == HELD_PEG_TOPIC
    for path, skill in ((params / "sim.yaml", "insert"), (params / "robot.yaml", "grasp"), (None, "insert")):
        assert held_peg_topic(path, skill, perception=True) == HELD_PEG_TOPIC
        assert held_peg_topic(path, skill, perception=False) == ""
    custom = tmp_path / "custom.yaml"
    custom.write_text("insert_skill:\n  ros__parameters:\n    held_peg_topic: /my_perception/held_peg\n")
    assert held_peg_topic(custom, "insert", perception=True) is None  # the file's stands
    from fmb_ros.cli import executor_parameters  # the executor waits for it before rotate and insert goals

    assert executor_parameters(perception=True, sim_time=True)["held_peg_topic"] == HELD_PEG_TOPIC
    assert "held_peg_topic" not in executor_parameters(perception=False, sim_time=False)
    from fmb_ros.perception_node import PARAMETERS as PERCEPTION
    from fmb_ros.skill_params import PARAMETERS as SKILL

    assert PERCEPTION["held_peg_topic"][0] == "~/held_peg" and SKILL["held_peg_topic"][0] == ""
    robot = yaml.safe_load((params / "robot.yaml").read_text())
    assert robot["/**"]["ros__parameters"]["tcp_frame"] == perception["robot.yaml"]["tcp_frame"]
    sim = yaml.safe_load((params / "sim.yaml").read_text())["fmb_sim_robot"]["ros__parameters"]
    assert SKILL["tcp_frame"][0] == perception["perception.yaml"]["tcp_frame"] == sim["tcp_frame"]


def test_teleop_and_recorder_start_with_the_robot_parameter_file(tmp_path):
    """`robot.launch.py teleop:=true record:=true` / `fmb ros up robot --teleop --record --store`: both
    nodes take the driver's topics and the skill servers' limits from robot.yaml's /**; `--store` wins."""
    rclpy = pytest.importorskip("rclpy", reason="ROS 2 wheels not installed: pip install -e .[ros]")
    from fmb_ros.cli import demonstration_nodes, node_parameters

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    ctx = rclpy.context.Context()
    path = ROOT / "launch" / "params" / "robot.yaml"
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=ctx, domain_id=ros_domain_id())
    nodes = []
    try:
        factories, names = demonstration_nodes(True, True, str(tmp_path / "demos"), sim_time=False)
        assert names == ["fmb_teleop", "fmb_recorder"]
        nodes += [factory(context=ctx) for factory in factories]
        teleop, recorder = nodes
        skill = node_parameters(path, "/**")  # what every node on the arm shares
        for name in ("base_frame", "tcp_pose_topic", "equilibrium_pose_topic", "gripper_command_topic"):
            assert teleop.params[name] == skill[name], name
        assert teleop.safety.limits.max_step_translation == skill["max_step_translation"] == 0.03
        assert recorder.topics.equilibrium_pose == skill["equilibrium_pose_topic"]
        assert recorder.topics.tcp_pose == skill["tcp_pose_topic"]
        assert recorder.params["store"] == str(tmp_path / "demos")
        assert node_parameters(path, "fmb_recorder")["store"] == "runs/demos"  # the file's, overridden
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)
