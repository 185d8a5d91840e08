"""`fmb sim ...`: collect demonstrations, cut chains into skills, evaluate experts, render episodes to video."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    """Add the `sim` command group to the `fmb` subparsers."""
    from fmb_core.threads import add_threads_flag
    from sim.parallel import add_executor_flags

    sim = sub.add_parser("sim", help="simulate FMB tasks: collect demonstrations, evaluate experts, play videos")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)

    p = sim_sub.add_parser("collect", help="collect expert demonstrations into an episode store (resumable)")
    _common(p)
    p.add_argument("--episodes", type=int, required=True, help="episodes to collect (seeds SEED .. SEED+N-1)")
    p.add_argument("--out", type=Path, required=True, help="episode store folder (created, or resumed)")
    p.add_argument(
        "--cameras", default="", help="comma-separated cameras to record: side_1,side_2,wrist (default none)"
    )
    p.add_argument("--image-size", type=int, default=128, help="square image side [px] (default 128)")
    p.add_argument("--point-cloud", type=int, default=0, help="points in the fused cloud, 0 = none (needs cameras)")
    add_executor_flags(p)
    add_threads_flag(p, "rollout")
    p.set_defaults(handler=_cmd_collect)

    p = sim_sub.add_parser("expert-eval", help="success rate of the scripted expert, per shape and size")
    _common(p)
    p.add_argument("--episodes", type=int, default=100, help="episodes (default 100)")
    add_executor_flags(p)
    p.add_argument("--json", action="store_true", help="print JSON only")
    add_threads_flag(p, "rollout")
    p.set_defaults(handler=_cmd_expert_eval)

    p = sim_sub.add_parser("stats", help="what an episode store holds: episodes, lengths, contact steps")
    p.add_argument("data", type=Path, help="episode store folder")
    p.set_defaults(handler=_cmd_stats)

    p = sim_sub.add_parser(
        "stages",
        help="cut chain demonstrations into one store per skill (each stage from where the previous left the peg)",
    )
    p.add_argument("data", type=Path, help="episode store of a chain task (fmb sim collect --task vertical_chain ...)")
    p.add_argument("--out", type=Path, required=True, help="folder for the skills' stores: OUT/<skill>/ (resumable)")
    p.add_argument(
        "--from-hole",
        type=float,
        default=20.0,
        help="insert stages start at the first step within this of their goal horizontally [mm], where the "
        "single-skill insert starts and a chain's planned approach hands over; 0 = with the transport (default 20)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_stages)

    p = sim_sub.add_parser("play", help="render one expert episode to an mp4 (side camera and wrist camera)")
    _common(p)
    p.add_argument("--video", type=Path, required=True, help="output .mp4 path")
    p.add_argument("--image-size", type=int, default=256, help="frame side per camera [px] (default 256)")
    p.set_defaults(handler=_cmd_play)


TASK_NAMES = (
    "grasp",
    "place_on_fixture",
    "regrasp",
    "rotate",
    "insert",
    "vertical_chain",
    "horizontal_chain",
    "assemble",
    "assemble_tower",
    "assemble_comb",
    "assemble_procedural",
)
"""For --help only (the parser is built without importing the simulator); a test keeps it in sync."""


def _common(p) -> None:
    p.add_argument("--task", default="insert", help=f"task: {', '.join(TASK_NAMES)} (default insert)")
    p.add_argument("--backend", default="mujoco", help="physics backend: mujoco or pybullet (default mujoco)")
    p.add_argument("--seed", type=int, default=0, help="first episode seed (default 0)")
    p.add_argument("--families", default="", help="comma-separated shape families (default all nine)")
    p.add_argument("--sizes", default="", help="comma-separated sizes S,M,L (default all)")
    p.add_argument("--noise", type=float, default=1.0, help="expert noise scale, 0 = none (default 1)")
    p.add_argument(
        "--dart",
        type=float,
        default=0.0,
        help="DART: noise on the executed actions while the expert's own are recorded, "
        "1 = 0.5 mm and 0.25 deg per axis (default 0 = off)",
    )
    p.add_argument(
        "--action-delay",
        type=int,
        default=0,
        help="control periods each action reaches the arm late, as a real arm's latency (default 0)",
    )
    p.add_argument(
        "--expert-modes",
        default="nearest",
        choices=("nearest", "all"),
        help="how the expert picks among equivalent ways: nearest = the one nearest the start; all = one at "
        "random per episode, e.g. any of a star's five fitting turns (multimodal demonstrations; experts with "
        "one way refuse it) (default nearest)",
    )
    p.add_argument("--split", default="all", help="object split (cad.splits): all, family_holdout, ... (default all)")
    p.add_argument("--side", default="train", help="train or test side of the split (default train)")
    p.add_argument("--placement", default="train", help="board placement: train or novel (default train)")
    p.add_argument(
        "--sensor",
        default="exact",
        help="depth camera model of sim.sensor for the recorded images and clouds: exact or default (D415-like) "
        "(default exact)",
    )
    p.add_argument(
        "--hand-eye",
        choices=("on", "off"),
        default="on",
        help="with --sensor default, fuse the recorded cloud as the robot does: each side camera's calibration "
        "refined on the hand first (sim.perception.hand_eye); off: the cameras as calibrated (default on)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _spec(args, cameras=(), image_size=128, point_cloud=0):
    from fmb_core.errors import check_range
    from sim.backend import BACKENDS
    from sim.collect import RunSpec
    from sim.exceptions import UnknownNameError
    from sim.tasks import TASKS

    if args.task not in TASKS:
        raise UnknownNameError(f"unknown task {args.task!r}; known: {', '.join(sorted(TASKS))}")
    if args.backend not in BACKENDS:
        raise UnknownNameError(f"unknown backend {args.backend!r}; known: {', '.join(BACKENDS)}")
    check_range("--noise", args.noise, 0.0, 5.0)
    check_range("--dart", args.dart, 0.0, 10.0)
    check_range("--action-delay", args.action_delay, 0, 100)
    check_range("--image-size", image_size, 16, 1024, unit="px")

    def split(text):
        return tuple(t.strip() for t in text.split(",") if t.strip()) or None

    spec = RunSpec(
        args.task,
        args.backend,
        tuple(cameras),
        (image_size, image_size),
        point_cloud,
        split(args.families),
        split(args.sizes),
        args.noise,
        args.split,
        args.side,
        args.placement,
        args.dart,
        sensor=args.sensor,
        action_delay=args.action_delay,
        expert_modes=args.expert_modes,
        hand_eye=args.hand_eye == "on",
    )
    spec.build()  # validate names (families, sizes, cameras) before any work starts
    return spec


def _say_budget(args, executor) -> None:
    """One line on stderr: where the episodes run and each worker's thread budget (after the flags
    they depend on are checked)."""
    import sys

    from fmb_core.errors import check_range
    from sim.collect import rollout_budget

    check_range("--episodes", args.episodes, 1, 1_000_000)
    budget = rollout_budget(executor.workers, args.threads)
    print(f"{executor.describe()}, each: {budget.describe()}", file=sys.stderr)


def _cmd_collect(args) -> int:
    from sim.collect import collect
    from sim.parallel import executor_from_args

    executor = executor_from_args(args)
    cameras = tuple(c.strip() for c in args.cameras.split(",") if c.strip())
    spec = _spec(args, cameras, args.image_size, args.point_cloud)
    if not args.quiet:
        _say_budget(args, executor)
    summary = collect(
        spec, args.out, args.episodes, args.seed, progress=not args.quiet, threads=args.threads, executor=executor
    )
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_expert_eval(args) -> int:
    from sim.collect import expert_eval
    from sim.parallel import executor_from_args

    executor = executor_from_args(args)
    spec = _spec(args)
    if not (args.quiet or args.json):
        _say_budget(args, executor)
    result = expert_eval(
        spec,
        args.episodes,
        args.seed,
        progress=not (args.quiet or args.json),
        threads=args.threads,
        executor=executor,
    )
    print(json.dumps(result, indent=1))
    if not args.json:
        from sim.collect import summary_line

        print(summary_line(result))
    return 0


def _cmd_stats(args) -> int:
    from sim.collect import store_stats

    print(json.dumps(store_stats(args.data), indent=1))
    return 0


def _cmd_stages(args) -> int:
    from fmb_core.errors import check_range
    from sim.stages import split_stages

    from_hole = check_range("--from-hole", args.from_hole / 1e3, 0.0, 0.5, unit="mm", scale=1e3)
    print(json.dumps(split_stages(args.data, args.out, progress=not args.quiet, from_hole=from_hole), indent=1))
    return 0


def _cmd_play(args) -> int:
    from fmb_core.errors import ParameterError
    from sim.rollout import run_episode
    from sim.video import tile, write_mp4

    if Path(args.video).suffix.lower() != ".mp4":
        raise ParameterError(f"--video {args.video}: expected a .mp4 file")
    spec = _spec(args, image_size=args.image_size)
    env, expert = spec.build()
    cams = {c.name: c for c in env.config.camera_specs()}
    frames = []

    class Recorder:
        def reset(self, env_):
            expert.reset(env_)

        def act(self, env_):
            frames.append(tile([env_.backend.render(cams["side_1"])[0], env_.backend.render(cams["wrist"])[0]]))
            return expert.act(env_)

    result = run_episode(env, Recorder(), args.seed)
    frames.append(tile([env.backend.render(cams["side_1"])[0], env.backend.render(cams["wrist"])[0]]))
    write_mp4(frames, args.video)
    print(f"wrote {Path(args.video).absolute()} ({len(frames)} frames, success={result.success})")
    return 0
