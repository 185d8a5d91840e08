"""`fmb ros ...`: run the ROS 2 nodes without `ros2 launch` (which PyPI does not carry).

    fmb ros up sim --task grasp --skills grasp [--params-file launch/params/sim.yaml] [--duration 30]

starts the simulated robot and one skill server per skill in one process, on a
MultiThreadedExecutor; skill servers are named `<skill>_skill` and run on simulated time.
Importing this module does not import rclpy, so `fmb --help` works without the [ros] extra.
"""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    """Add the `ros` command group to the `fmb` subparsers."""
    ros = sub.add_parser("ros", help="run the ROS 2 nodes (simulated robot, skill servers) in one process")
    ros_sub = ros.add_subparsers(dest="ros_command", metavar="ROS_COMMAND", required=True)
    p = ros_sub.add_parser("up", help="start a set of nodes: `sim` = simulated robot + skill servers")
    p.add_argument("target", choices=["sim"], help="what to start (sim; robot comes with the real-robot adapters)")
    p.add_argument("--task", default="grasp", help="simulated task (default grasp)")
    p.add_argument("--skills", default="", help="comma-separated skill servers to start (default: the task)")
    p.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    p.add_argument("--real-time-factor", type=float, default=1.0, help="simulated s per wall s (default 1)")
    p.add_argument("--params-file", type=Path, default=None, help="ROS 2 parameter YAML applied to every node")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many wall seconds (0 = Ctrl-C)")
    p.set_defaults(handler=_cmd_up)


def _cmd_up(args) -> int:
    from fmb.errors import ParameterError, check_range

    check_range("--real-time-factor", args.real_time_factor, 0.01, 100.0)
    check_range("--duration", args.duration, 0.0, 1e7, unit="s")
    if args.params_file is not None and not args.params_file.is_file():
        raise ParameterError(f"--params-file {args.params_file}: no such file")
    from rclpy.parameter import Parameter

    from fmb_ros.sim_robot import SimRobotNode
    from fmb_ros.skill_server import SkillServerNode
    from fmb_ros.spin import spin_nodes

    skills = [s for s in (args.skills or args.task).split(",") if s]
    sim_overrides = [
        Parameter("task", value=args.task),
        Parameter("seed", value=args.seed),
        Parameter("real_time_factor", value=float(args.real_time_factor)),
    ]

    def skill_factory(skill: str):
        overrides = [Parameter("skill", value=skill), Parameter("use_sim_time", value=True)]
        return lambda: SkillServerNode(f"{skill}_skill", parameter_overrides=overrides)

    ros_args = ["--ros-args", "--params-file", str(args.params_file)] if args.params_file else None
    return spin_nodes(
        ros_args,
        lambda: SimRobotNode(parameter_overrides=sim_overrides),
        *(skill_factory(s) for s in skills),
        duration=args.duration or None,
    )
