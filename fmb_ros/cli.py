"""`fmb ros ...`: run the ROS 2 nodes without `ros2 launch` (which PyPI does not carry).

    fmb ros up sim [--task insert] [--skills insert] [--params-file launch/params/sim.yaml] [--duration 30]
    fmb ros up sim --task vertical_chain --skills grasp,rotate,insert --task-file launch/tasks/vertical_chain.yaml

starts what `launch/sim.launch.py` starts, with the same parameter file (default: the package's
`launch/params/sim.yaml`), in one process on a MultiThreadedExecutor: the simulated robot, one
skill server per skill (named `<skill>_skill`, on simulated time) and, with `--task-file`, the task
executor. Flags given on the command line win over the file. Importing this module does not import
rclpy, so `fmb --help` works without the [ros] extra.
"""

from __future__ import annotations

import sys
from pathlib import Path

SIM_NODE = "fmb_sim_robot"


def register(sub) -> None:
    """Add the `ros` command group to the `fmb` subparsers."""
    ros = sub.add_parser("ros", help="run the ROS 2 nodes (simulated robot, skill servers) in one process")
    ros_sub = ros.add_subparsers(dest="ros_command", metavar="ROS_COMMAND", required=True)
    p = ros_sub.add_parser("up", help="start a set of nodes: `sim` = simulated robot + skill servers")
    p.add_argument("target", choices=["sim"], help="what to start (sim; robot comes with the real-robot adapters)")
    p.add_argument("--task", default=None, help="simulated task (default: the parameter file's, else grasp)")
    p.add_argument("--skills", default="", help="comma-separated skill servers to start (default: the task)")
    p.add_argument("--seed", type=int, default=None, help="scene seed (default: the parameter file's)")
    p.add_argument("--real-time-factor", type=float, default=None, help="simulated s per wall s (default 1)")
    p.add_argument(
        "--params-file", type=Path, default=None, help="ROS 2 parameter YAML (default launch/params/sim.yaml)"
    )
    p.add_argument("--task-file", type=Path, default=None, help="also start the task executor with this YAML task")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many wall seconds (0 = Ctrl-C)")
    p.set_defaults(handler=_cmd_up)


def default_params_file(name: str = "sim.yaml") -> Path | None:
    """The package's parameter file: in this source tree, else in the installed share folder."""
    for candidate in (
        Path(__file__).resolve().parents[1] / "launch" / "params" / name,
        Path(sys.prefix) / "share" / "fmb_ros" / "launch" / "params" / name,
    ):
        if candidate.is_file():
            return candidate
    return None


def node_parameters(params_file: Path | None, node: str) -> dict:
    """The `ros__parameters` of `node` in a ROS 2 parameter YAML ({} when absent)."""
    if params_file is None:
        return {}
    import yaml

    from fmb.errors import ParameterError

    try:
        data = yaml.safe_load(params_file.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParameterError(f"--params-file {params_file}: not valid YAML ({e})") from None
    section = data.get(node) or data.get("/" + node) or {}
    return dict(section.get("ros__parameters") or {})


def _cmd_up(args) -> int:
    from fmb.errors import ParameterError, check_range

    if args.real_time_factor is not None:
        check_range("--real-time-factor", args.real_time_factor, 0.01, 100.0)
    check_range("--duration", args.duration, 0.0, 1e7, unit="s")
    params_file = args.params_file or default_params_file()
    if params_file is not None and not params_file.is_file():
        raise ParameterError(f"--params-file {params_file}: no such file")
    task = args.task or node_parameters(params_file, SIM_NODE).get("task", "grasp")
    from rclpy.parameter import Parameter

    from fmb_ros.sim_robot import SimRobotNode
    from fmb_ros.skill_server import SkillServerNode
    from fmb_ros.spin import exit_process, spin_nodes

    skills = [s for s in (args.skills or task).split(",") if s]
    sim_overrides = [Parameter("task", value=task)]
    if args.seed is not None:
        sim_overrides.append(Parameter("seed", value=args.seed))
    if args.real_time_factor is not None:
        sim_overrides.append(Parameter("real_time_factor", value=float(args.real_time_factor)))

    def skill_factory(skill: str):
        overrides = [Parameter("skill", value=skill), Parameter("use_sim_time", value=True)]
        return lambda: SkillServerNode(f"{skill}_skill", parameter_overrides=overrides)

    factories = [lambda: SimRobotNode(parameter_overrides=sim_overrides), *(skill_factory(s) for s in skills)]
    if args.task_file is not None:
        from fmb_ros.task_executor import TaskExecutorNode

        executor_overrides = [
            Parameter("task_file", value=str(args.task_file.resolve())),
            Parameter("use_sim_time", value=True),
        ]
        factories.append(lambda: TaskExecutorNode(parameter_overrides=executor_overrides))
    print(f"fmb ros up sim: task {task}, skills {', '.join(skills)}, parameters {params_file or 'defaults'}")
    ros_args = ["--ros-args", "--params-file", str(params_file)] if params_file else None
    code = spin_nodes(ros_args, *factories, duration=args.duration or None)
    exit_process(code)  # the nodes are shut down; skip finalisation (see exit_process)
