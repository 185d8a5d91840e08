"""`fmb ros ...`: run the ROS 2 nodes without `ros2 launch` (which PyPI does not carry).

    fmb ros up sim [--task insert] [--skills insert] [--params-file launch/params/sim.yaml] [--duration 30]
    fmb ros up sim --task vertical_chain --skills grasp,rotate,insert --task-file launch/tasks/vertical_chain.yaml
    fmb ros up sim --task vertical_chain --perception
    fmb ros up robot [--params-file launch/params/robot.yaml] [--skills grasp] [--no-perception] [--cloud-fusion]
    fmb ros up sim|robot --teleop --record [--store runs/demos]    # a joystick drives the arm; episodes recorded

`up sim` starts what `launch/sim.launch.py` starts, with the same parameter files (default: the
package's `launch/params/sim.yaml`, plus `perception.yaml` with `--perception`), in one process on a
MultiThreadedExecutor: the simulated robot, one skill server per skill (named `<skill>_skill`, on
simulated time), with `--perception` fmb_perception (the skill servers then read its held-peg
estimate, `held_peg_topic`), and with `--task-file` the task executor (with perception it takes
targets from fmb_perception and waits for its held peg: `executor_parameters`).
`up robot` starts what `launch/robot.launch.py` starts, from `launch/params/robot.yaml`: the skill
servers and fmb_perception the file names, no simulator, on the wall clock; it prints which driver
and camera topics have no publisher yet (`fmb_ros.watch`). With perception the skill servers read
its estimate of the held peg (`held_peg_topic` = HELD_PEG_TOPIC, unless the parameter file sets
it; without perception none). Both take `--teleop` (fmb_teleop) and `--record` (fmb_recorder, into
`--store` or the file's `store`). Flags given on the command line win over the file. Importing this
module does not import rclpy, so `fmb --help` works without the [ros] extra.
"""

from __future__ import annotations

import sys
from pathlib import Path

SIM_NODE = "fmb_sim_robot"
PERCEPTION_NAMESPACE = "/fmb_perception"
"""fmb_perception's namespace: its object poses, which the task executor reads (`perception_namespace`)."""
HELD_PEG_TOPIC = "/fmb_perception/held_peg"
"""fmb_perception's estimate of the held peg in the hand (its `~/held_peg`), which the skill servers
read (`held_peg_topic`) when perception runs."""


def register(sub) -> None:
    """Add the `ros` command group to the `fmb` subparsers."""
    ros = sub.add_parser("ros", help="run the ROS 2 nodes (simulated robot, skill servers) in one process")
    ros_sub = ros.add_subparsers(dest="ros_command", metavar="ROS_COMMAND", required=True)
    p = ros_sub.add_parser(
        "up",
        help="start a set of nodes: `sim` = simulated robot + skill servers; `robot` = the same minus the simulator",
    )
    p.add_argument("target", choices=["sim", "robot"], help="what to start (as launch/sim.launch.py, robot.launch.py)")
    p.add_argument("--task", default=None, help="simulated task (sim; default: the parameter file's, else grasp)")
    p.add_argument("--skills", default="", help="comma-separated skill servers (default: the task / the file's)")
    p.add_argument("--seed", type=int, default=None, help="scene seed (sim; default: the parameter file's)")
    p.add_argument("--real-time-factor", type=float, default=None, help="simulated s per wall s (sim; default 1)")
    p.add_argument(
        "--params-file", type=Path, default=None, help="ROS 2 parameter YAML (default launch/params/<target>.yaml)"
    )
    p.add_argument("--perception", action="store_true", help="sim: cameras, point cloud and fmb_perception")
    p.add_argument("--no-perception", action="store_true", help="robot: leave fmb_perception out")
    p.add_argument(
        "--cloud-fusion", action="store_true", help="robot: also fmb_cloud_fusion (cameras refined on the hand)"
    )
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="[SKILL=]RUN",
        help="the policy run (or checkpoint) a skill server runs instead of its parameter file's checkpoint "
        "(sim default: the scripted expert), as SKILL=RUN, once per skill; a plain RUN for every skill "
        "(a policy of several skills); RUN 'expert': the scripted expert",
    )
    p.add_argument("--task-file", type=Path, default=None, help="also start the task executor with this YAML task")
    p.add_argument(
        "--teleop", action="store_true", help="also start fmb_teleop: a joystick (sensor_msgs/Joy) drives the arm"
    )
    p.add_argument("--record", action="store_true", help="also start fmb_recorder (its services record episodes)")
    p.add_argument("--store", default=None, help="--record: folder of the episode stores (default: the file's store)")
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


def _load_params(params_file: Path | None) -> dict:
    if params_file is None:
        return {}
    import yaml

    from fmb_core.errors import ParameterError

    try:
        return yaml.safe_load(params_file.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParameterError(f"--params-file {params_file}: not valid YAML ({e})") from None


def node_parameters(params_file: Path | None, node: str) -> dict:
    """The `ros__parameters` of `node` in a ROS 2 parameter YAML ({} when absent)."""
    data = _load_params(params_file)
    section = data.get(node) or data.get("/" + node) or {}
    return dict(section.get("ros__parameters") or {})


def _cmd_up(args) -> int:
    from fmb_core.errors import ParameterError, check_range

    if args.real_time_factor is not None:
        check_range("--real-time-factor", args.real_time_factor, 0.01, 100.0)
    check_range("--duration", args.duration, 0.0, 1e7, unit="s")
    robot = args.target == "robot"
    for flag, value, allowed in (
        ("--task", args.task, not robot),
        ("--seed", args.seed, not robot),
        ("--real-time-factor", args.real_time_factor, not robot),
        ("--perception", args.perception or None, not robot),
        ("--no-perception", args.no_perception or None, robot),
        ("--cloud-fusion", args.cloud_fusion or None, robot),
        ("--store", args.store, args.record),
    ):
        if value is not None and not allowed:
            without = " without --record" if flag == "--store" else ""
            raise ParameterError(f"{flag} does not apply to `fmb ros up {args.target}`{without}")
    params_file = args.params_file or default_params_file(f"{args.target}.yaml")
    if params_file is not None and not params_file.is_file():
        raise ParameterError(f"--params-file {params_file}: no such file")
    files = [params_file] if params_file else []
    if args.perception:
        extra = default_params_file("perception.yaml")
        if extra is None:
            raise ParameterError("--perception: launch/params/perception.yaml is missing from the installation")
        files.append(extra)
    factories, names, summary = _robot_nodes(args, params_file) if robot else _sim_nodes(args, params_file)
    demo_factories, demo_names = demonstration_nodes(args.teleop, args.record, args.store, sim_time=not robot)
    factories, names = factories + demo_factories, names + demo_names
    summary += "".join(f", {n}" for n in demo_names)
    print(f"fmb ros up {args.target}: {summary}; parameters {', '.join(map(str, files)) or 'defaults'}", flush=True)
    from fmb_ros.spin import exit_process, spin_nodes

    if robot:
        from fmb_ros.watch import InputWatcher

        factories.append(lambda: InputWatcher(names, label="fmb ros up robot"))
    ros_args = ["--ros-args"] + [a for f in files for a in ("--params-file", str(f))] if files else None
    code = spin_nodes(ros_args, *factories, duration=args.duration or None)
    exit_process(code)  # the nodes are shut down; skip finalisation (see exit_process)


def _sim_nodes(args, params_file):
    """(node factories, node names, summary) of `fmb ros up sim`."""
    from rclpy.parameter import Parameter

    from fmb_ros.sim_robot import SimRobotNode
    from fmb_ros.skill_server import SkillServerNode
    from sim.tasks import TASKS

    task = args.task or node_parameters(params_file, SIM_NODE).get("task", "grasp")
    chain = ",".join(getattr(TASKS.get(task), "stages", ()))  # a chain: a skill server per stage
    skills = [s for s in (args.skills or chain or task).split(",") if s]
    checkpoints = skill_checkpoints(args.policy, skills)
    sim_overrides = [Parameter("task", value=task)]
    if args.seed is not None:
        sim_overrides.append(Parameter("seed", value=args.seed))
    if args.real_time_factor is not None:
        sim_overrides.append(Parameter("real_time_factor", value=float(args.real_time_factor)))

    def skill_factory(skill: str):
        overrides = [Parameter("skill", value=skill), Parameter("use_sim_time", value=True)]
        overrides += held_peg_overrides(params_file, skill, args.perception)
        if skill in checkpoints:
            overrides.append(Parameter("checkpoint", value=checkpoints[skill]))
        if planned_approach(params_file, task, skill, checkpoints.get(skill, "")):
            overrides.append(Parameter("approach", value=True))
        return lambda: SkillServerNode(f"{skill}_skill", parameter_overrides=overrides)

    factories = [lambda: SimRobotNode(parameter_overrides=sim_overrides), *(skill_factory(s) for s in skills)]
    names = [SIM_NODE, *(f"{s}_skill" for s in skills)]
    if args.perception:
        from fmb_ros.perception_node import PerceptionNode

        factories.append(lambda: PerceptionNode(parameter_overrides=[Parameter("use_sim_time", value=True)]))
        names.append("fmb_perception")
    if args.task_file is not None:
        factories.append(_executor_factory(args.task_file, perception=args.perception, sim_time=True))
        names.append("fmb_task_executor")
    summary = f"task {task}, skills {', '.join(_skill_label(s, checkpoints) for s in skills)}"
    return factories, names, summary + (", perception" if args.perception else "")


def skill_checkpoints(values: list[str], skills: list[str]) -> dict[str, str]:
    """Skill -> the `checkpoint` parameter its server gets from the --policy values ("" for the
    scripted expert); ParameterError for a skill that has no server or a run that does not exist."""
    from fmb_core.errors import ParameterError
    from policies.flags import parse_policies

    plain, named = parse_policies(values)
    out = {skill: plain for skill in skills} if plain else {}
    for skill, run in named:
        if skill not in skills:
            raise ParameterError(f"--policy {skill}=...: no {skill} skill server (skills: {', '.join(skills)})")
        out[skill] = run
    out = {skill: "" if run == "expert" else run for skill, run in out.items()}
    for skill, run in out.items():
        if run and not Path(run).is_dir():
            raise ParameterError(f"--policy {skill}={run}: no such run or checkpoint folder")
    return out


def held_peg_topic(params_file: Path | None, skill: str, perception: bool) -> str | None:
    """The `held_peg_topic` skill server `<skill>_skill` is started with: perception's held peg
    (HELD_PEG_TOPIC) when perception runs, else "" (none); None when the parameter file sets it for
    that node (the file's stands). The rule of `fmb ros up` and both launch files."""
    if "held_peg_topic" in node_parameters(params_file, f"{skill}_skill"):
        return None
    return HELD_PEG_TOPIC if perception else ""


def planned_approach(params_file: Path | None, task: str, skill: str, checkpoint: str) -> bool:
    """Whether skill server `<skill>_skill` is started with `approach` on: a chain task's rotate or
    insert stage run by a policy (`checkpoint`), as `fmb eval` approaches a chain's learned stages
    (`sim.experts.chain.PlannedApproach`); False when the parameter file sets it (the file's
    stands). The rule of `fmb ros up sim` and `sim.launch.py`."""
    from sim.experts.chain import APPROACHED
    from sim.tasks import TASKS

    if "approach" in node_parameters(params_file, f"{skill}_skill"):
        return False
    return bool(checkpoint) and skill in APPROACHED and skill in getattr(TASKS.get(task), "stages", ())


def held_peg_overrides(params_file: Path | None, skill: str, perception: bool) -> list:
    """`held_peg_topic` (`held_peg_topic`) as the overrides of a skill server's node."""
    from rclpy.parameter import Parameter

    topic = held_peg_topic(params_file, skill, perception)
    return [] if topic is None else [Parameter("held_peg_topic", value=topic)]


def _skill_label(skill: str, checkpoints: dict[str, str]) -> str:
    if skill not in checkpoints:
        return skill
    return f"{skill} ({checkpoints[skill] or 'expert'})"


def _robot_nodes(args, params_file):
    """(node factories, node names, summary) of `fmb ros up robot`: the skill servers the parameter file
    names (or --skills), fmb_perception when the file has it, the executor with --task-file."""
    from rclpy.parameter import Parameter

    from fmb_ros.skill_server import SkillServerNode

    data = _load_params(params_file)
    sections = [k.lstrip("/") for k in data if k != "/**"]
    if args.skills:
        skills = [s for s in args.skills.split(",") if s]
    else:
        skills = [k[: -len("_skill")] for k in sections if k.endswith("_skill")]

    checkpoints = skill_checkpoints(args.policy, skills)
    perception = "fmb_perception" in sections and not args.no_perception

    def skill_factory(skill: str):
        overrides = [Parameter("skill", value=skill), *held_peg_overrides(params_file, skill, perception)]
        if skill in checkpoints:
            overrides.append(Parameter("checkpoint", value=checkpoints[skill]))
        return lambda: SkillServerNode(f"{skill}_skill", parameter_overrides=overrides)

    factories = [skill_factory(s) for s in skills]
    names = [f"{s}_skill" for s in skills]
    if perception:
        from fmb_ros.perception_node import PerceptionNode

        factories.append(lambda: PerceptionNode())
        names.append("fmb_perception")
    if args.cloud_fusion:
        if "fmb_cloud_fusion" not in sections:
            from fmb_core.errors import ParameterError

            raise ParameterError(f"--cloud-fusion: --params-file {params_file} has no fmb_cloud_fusion section")
        from fmb_ros.cloud_fusion_node import CloudFusionNode

        factories.append(lambda: CloudFusionNode())
        names.append("fmb_cloud_fusion")
    if args.task_file is not None:
        factories.append(_executor_factory(args.task_file, perception=perception, sim_time=False))
        names.append("fmb_task_executor")
    if not factories:
        from fmb_core.errors import ParameterError

        raise ParameterError(
            f"--params-file {params_file}: names no <skill>_skill or fmb_perception node; use --skills"
        )
    summary = f"skills {', '.join(_skill_label(s, checkpoints) for s in skills) or 'none'}"
    summary += ", perception" if perception else ""
    summary += (", cloud fusion" if args.cloud_fusion else "") + " (no simulator)"
    return factories, names, summary


def demonstration_nodes(teleop: bool, record: bool, store: str | None, sim_time: bool):
    """(node factories, node names) of `--teleop` (fmb_teleop) and `--record` (fmb_recorder, into
    `store` when given, else its parameter file's), on the simulator's clock with `sim_time`. A
    factory's keyword arguments go to its node (a test's `context`)."""
    from rclpy.parameter import Parameter

    overrides = [Parameter("use_sim_time", value=True)] if sim_time else []
    factories, names = [], []
    if teleop:
        from fmb_ros.teleop_node import TeleopNode

        factories.append(lambda **kwargs: TeleopNode(parameter_overrides=overrides, **kwargs))
        names.append("fmb_teleop")
    if record:
        from fmb_ros.recorder_node import RecorderNode

        stored = overrides + ([Parameter("store", value=str(store))] if store else [])
        factories.append(lambda **kwargs: RecorderNode(parameter_overrides=stored, **kwargs))
        names.append("fmb_recorder")
    return factories, names


def executor_parameters(perception: bool, sim_time: bool) -> dict:
    """The parameters `fmb_task_executor` gets beside its parameter file's: the simulator's clock
    (sim) or no ground truth (robot), and with perception fmb_perception's object poses
    (`perception_namespace`) and held peg (`held_peg_topic` = HELD_PEG_TOPIC: a rotate or insert goal
    waits up to `held_peg_wait` for an estimate of its stage). The rule of `fmb ros up` and sim.launch.py."""
    values: dict = {"use_sim_time": sim_time}
    if perception:
        values.update(perception_namespace=PERCEPTION_NAMESPACE, held_peg_topic=HELD_PEG_TOPIC)
    if not sim_time:
        values["ground_truth_namespace"] = ""
    return values


def _executor_factory(task_file: Path, perception: bool, sim_time: bool):
    from rclpy.parameter import Parameter

    from fmb_ros.task_executor import TaskExecutorNode

    values = {"task_file": str(task_file.resolve()), **executor_parameters(perception, sim_time)}
    overrides = [Parameter(k, value=v) for k, v in values.items()]
    return lambda: TaskExecutorNode(parameter_overrides=overrides)
