"""`fmb bench ...`: speed and quality benchmarks, one subcommand per layer, JSON on stdout."""

from __future__ import annotations

import json


def register(sub) -> None:
    """Add the `bench` command group to the `fmb` subparsers."""
    from fmb_core.threads import add_threads_flag
    from policies.flags import add_hand_eye_flag
    from sim.parallel import add_executor_flags

    bench = sub.add_parser("bench", help="benchmarks (timings, counts) as JSON")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    p = bench_sub.add_parser("cad", help="time the standard set export and a single part")
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement; medians are reported (default 3)")
    p.add_argument("--json", action="store_true", help="JSON only on stdout (default: also a summary on stderr)")
    p.set_defaults(handler=_cmd_cad)
    p = bench_sub.add_parser("sim", help="physics rate, rendering cost and demonstrations per minute")
    p.add_argument("--backend", default="mujoco", help="mujoco or pybullet (default mujoco)")
    p.add_argument("--episodes", type=int, default=6, help="expert episodes per measurement (default 6)")
    p.add_argument("--json", action="store_true", help="JSON only on stdout")
    p.set_defaults(handler=_cmd_sim)
    p = bench_sub.add_parser("policy", help="decision latency of the policies (CPU; CUDA when present)")
    p.add_argument("--repeats", type=int, default=20, help="timed decisions per figure; medians (default 20)")
    p.add_argument("--json", action="store_true", help="JSON only on stdout")
    add_threads_flag(p, "inference")
    p.set_defaults(handler=_cmd_policy)
    p = bench_sub.add_parser(
        "goal-response", help="how much a goal-conditioned policy's next move follows its goal (offline, on demos)"
    )
    p.add_argument("--policy", required=True, help="run or checkpoint folder of a goal-conditioned policy")
    p.add_argument("--data", nargs="+", required=True, help="held-out demonstration store(s) (fmb sim collect)")
    p.add_argument("--shift", type=float, default=0.002, help="goal shift each way [m] (default 0.002)")
    p.add_argument("--near", type=float, default=0.005, help="goal this close across [m] (default 0.005)")
    p.add_argument("--windows", type=int, default=256, help="windows measured at most (default 256)")
    p.add_argument("--json", action="store_true", help="JSON only on stdout (default: also a summary on stderr)")
    p.set_defaults(handler=_cmd_goal_response)
    p = bench_sub.add_parser("ros", help="observation-to-command latency and jitter of a skill through the ROS graph")
    p.add_argument("--cycles", type=int, default=300, help="10 Hz control cycles measured (default 300)")
    p.add_argument("--checkpoint", default="", help="policy run or checkpoint (default: the scripted expert)")
    p.add_argument("--skill", default="grasp", help="skill / simulated task (default grasp)")
    p.add_argument(
        "--small-policy", action="store_true", help="train a small diffusion policy on the fly and measure it"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="a skill server parameter for the run, e.g. gil_switch_interval:=0.005 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="JSON only on stdout")
    p.set_defaults(handler=_cmd_ros)
    p = bench_sub.add_parser("record", help="fmb_recorder at 10 Hz with three 256 px cameras and a 4096-point cloud")
    from fmb_ros.bench_record import add_flags, run  # no rclpy at import

    add_flags(p)
    p.set_defaults(handler=run)
    p = bench_sub.add_parser("import", help="fmb data import-fmb on 1000 synthetic FMB-format steps with 4 cameras")
    from sim.datasets.bench import add_flags as import_flags
    from sim.datasets.bench import run as import_run

    import_flags(p)
    p.set_defaults(handler=import_run)
    p = bench_sub.add_parser(
        "load", help="decision latency, training speed, ROS loop and eval scaling, idle and beside a competing load"
    )
    p.add_argument("--repeats", type=int, default=60, help="timed N = 1 decisions per figure (default 60)")
    p.add_argument("--train-steps", type=int, default=30, help="timed training steps per figure (default 30)")
    p.add_argument("--cycles", type=int, default=1000, help="10 Hz ROS cycles per phase, 0 = no ROS (default 1000)")
    p.add_argument("--eval-episodes", type=int, default=40, help="fmb eval episodes per worker count, 0 = none")
    p.add_argument("--json", action="store_true", help="JSON only on stdout (default: also a summary on stderr)")
    p.set_defaults(handler=_cmd_load)
    p = bench_sub.add_parser(
        "scale", help="episodes per minute with 1 and 2 workers (local processes, Ray) and DDP training speed"
    )
    p.add_argument("--collect-episodes", type=int, default=24, help="collect episodes per setting (default 24)")
    p.add_argument("--eval-episodes", type=int, default=16, help="fmb eval episodes per setting (default 16)")
    p.add_argument("--train-steps", type=int, default=40, help="training steps per process count (default 40)")
    p.add_argument("--batch-size", type=int, default=64, help="effective training batch (default 64)")
    p.add_argument("--json", action="store_true", help="JSON only on stdout (default: also a summary on stderr)")
    p.set_defaults(handler=_cmd_scale)
    p = bench_sub.add_parser(
        "ablation", help="diffusion policy vs + implicit / explicit selection, + GravMap, + both (trains and evaluates)"
    )
    _ablation_flags(p)
    p.set_defaults(handler=_cmd_ablation)
    p = bench_sub.add_parser("perception", help="pose error of fmb_perception against the simulator's ground truth")
    p.add_argument("--scenes", type=int, default=20, help="seeded scenes (default 20)")
    p.add_argument("--seed", type=int, default=0, help="first scene seed (default 0)")
    p.add_argument("--task", default="vertical_chain", help="sim task whose scenes are used (default vertical_chain)")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian noise added to every point [m] (default 0)")
    p.add_argument("--image-size", type=int, default=256, help="side camera images, square [px] (default 256)")
    p.add_argument("--points", type=int, default=40_000, help="points in the fused cloud (default 40000)")
    p.add_argument("--sensor", default="default", help="depth camera model of sim.sensor: default (D415-like) or exact")
    p.add_argument("--depth-noise", type=float, help="depth noise sigma at 1 m [1/m] (sigma = this * z^2)")
    p.add_argument("--edge-jump", type=float, help="depth step [m] beyond which edge pixels return nothing (0 = off)")
    p.add_argument("--edge-width", type=int, help="pixels around such a step that return nothing")
    p.add_argument("--max-incidence", type=float, help="grazing angle [deg] beyond which nothing returns (90 = off)")
    p.add_argument("--extrinsic-rotation", type=float, help="per-episode camera orientation error [deg]")
    p.add_argument("--extrinsic-translation", type=float, help="per-episode camera position error [m]")
    add_hand_eye_flag(p)
    add_executor_flags(p, "scenes")
    p.add_argument("--per-scene", action="store_true", help="also list every scene's errors")
    p.add_argument("--json", action="store_true", help="JSON only on stdout (default: also a summary on stderr)")
    p.set_defaults(handler=_cmd_perception)


def _cmd_load(args) -> int:
    import sys

    from fmb.bench_load import bench_load

    say = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    result = bench_load(args.repeats, args.train_steps, args.cycles, args.eval_episodes, args.cycles > 0, say)
    print(json.dumps(result, indent=1))
    if not args.json:
        r = result["ratios"]
        print(f"loaded / idle, decision N=1 p50 and p99: {r['decision_budget']['n1_p50']} and "
              f"{r['decision_budget']['n1_p99']} with the budget, {r['decision_all_cores']['n1_p50']} and "
              f"{r['decision_all_cores']['n1_p99']} on all cores; training speed {r['training_speed_budget']} "
              f"(all cores {r['training_speed_all_cores']})", file=sys.stderr)  # fmt: skip
        if "ros_missed_cycles" in r:
            print(f"ROS missed cycles idle / loaded: {r['ros_missed_cycles']}", file=sys.stderr)
        if "eval_workers_speedup" in r:
            print(f"fmb eval --workers 2 / --workers 1: {r['eval_workers_speedup']}x", file=sys.stderr)
    return 0


def _cmd_scale(args) -> int:
    import sys

    from fmb.bench_scale import bench_scale

    say = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    result = bench_scale(args.collect_episodes, args.eval_episodes, args.train_steps, args.batch_size, say)
    print(json.dumps(result, indent=1))
    if not args.json:
        r, o = result["ratios"], result["ray_overhead"]
        print(f"2 workers / 1 (steady): collect {r['collect_speedup_local_steady']}x local, "
              f"{r['collect_speedup_ray_steady']}x Ray; eval {r['eval_speedup_local_steady']}x local, "
              f"{r['eval_speedup_ray_steady']}x Ray; Ray's share of a 100-episode run against local processes: "
              f"collect {o['collect']['share_of_100_episodes']:+.1%}, eval {o['eval']['share_of_100_episodes']:+.1%}; "
              f"DDP 2 gloo processes / 1: {r['ddp_speedup_2_processes']}x steps/s", file=sys.stderr)  # fmt: skip
    return 0


def _cmd_cad(args) -> int:
    import sys

    from cad.bench import bench_cad
    from fmb_core.errors import check_range

    check_range("--repeats", args.repeats, 1, 100)
    result = bench_cad(repeats=int(args.repeats))
    print(json.dumps(result, indent=1, sort_keys=True))
    if not args.json:
        print(
            f"standard set: {result['set_seconds_median']:.2f} s median; "
            f"with {result['tiles']} tiles for a {result['tiled_bed_mm'][0]:g} mm bed: "
            f"{result['tiled_set_seconds_median']:.2f} s median; "
            f"single part: {result['part_seconds_median']:.3f} s median",
            file=sys.stderr,
        )
    return 0


def _cmd_sim(args) -> int:
    from fmb_core.errors import check_range
    from sim.backend import BACKENDS
    from sim.bench import bench_sim
    from sim.exceptions import UnknownNameError

    if args.backend not in BACKENDS:
        raise UnknownNameError(f"unknown backend {args.backend!r}; known: {', '.join(BACKENDS)}")
    check_range("--episodes", args.episodes, 1, 1000)
    print(json.dumps(bench_sim(args.backend, int(args.episodes)), indent=1, sort_keys=True))
    return 0


def _cmd_policy(args) -> int:
    from fmb_core.errors import check_range
    from fmb_core.threads import configure
    from policies.experiments.bench import bench_policy

    check_range("--repeats", args.repeats, 1, 1000)
    configure("inference", threads=args.threads)  # what the skill server computes with
    print(json.dumps(bench_policy(int(args.repeats)), indent=1, sort_keys=True))
    return 0


def _cmd_goal_response(args) -> int:
    import sys

    from policies.experiments.diagnostics import goal_response

    result = goal_response(args.policy, args.data, args.shift, args.near, args.windows)
    print(json.dumps(result, indent=1, sort_keys=True))
    if not args.json:
        g, d, e = result["goal_gain"], result["demonstration_gain"], result["open_loop_error_mm"]
        print(
            f"goal gain x {g['x']:.2f} y {g['y']:.2f} z {g['z']:.2f} (demonstrations: x {d['x']:.2f} y {d['y']:.2f} "
            f"z {d['z']:.2f}); open-loop error {e['median']:.2f} mm median over {result['windows']} windows",
            file=sys.stderr,
        )
    return 0


def _cmd_ros(args) -> int:
    import sys

    from fmb_core.errors import ParameterError, check_range
    from fmb_ros.bench import bench_ros
    from fmb_ros.skill_params import PARAMETERS

    check_range("--cycles", args.cycles, 10, 100_000)
    params = {}
    for item in args.param:
        name, sep, value = item.partition(":=")
        if not sep or name not in PARAMETERS:
            raise ParameterError(f"--param {item!r}: expected NAME:=VALUE with NAME a skill server parameter")
        params[name] = value
    result = bench_ros(int(args.cycles), args.checkpoint, args.skill, small_policy=args.small_policy, params=params)
    result["params"] = params
    print(json.dumps(result, indent=1, sort_keys=True))
    if not args.json:
        lat = result["latency_ms"]
        print(
            f"latency median {lat.get('median')} ms, p99 {lat.get('p99')} ms; "
            f"missed {result['missed_cycles']} of {result['cycles']} cycles",
            file=sys.stderr,
        )
    return 0


def _cmd_perception(args) -> int:
    import math
    import sys

    from sim.parallel import executor_from_args
    from sim.perception.evaluate import evaluate_perception
    from sim.sensor import make_sensor

    def rad(deg):
        return None if deg is None else math.radians(deg)

    sensor = make_sensor(
        args.sensor,
        depth_noise=args.depth_noise,
        edge_jump=args.edge_jump,
        edge_width=args.edge_width,
        max_incidence=rad(args.max_incidence),
        extrinsic_rotation=rad(args.extrinsic_rotation),
        extrinsic_translation=args.extrinsic_translation,
    )
    result = evaluate_perception(
        sensor=sensor,
        scenes=args.scenes,
        task=args.task,
        seed=args.seed,
        image_size=args.image_size,
        points=args.points,
        noise=args.noise,
        progress=not args.json,
        hand_eye=args.hand_eye == "on",
        executor=executor_from_args(args),
    )
    if not args.per_scene:
        result.pop("per_scene")
    print(json.dumps(result, indent=1, sort_keys=True))
    if not args.json:
        objects = ("board", "hole", "fixture", "pocket", "peg", "tracked_board", "tracked_peg")
        for key in (*objects, "in_hand", "in_hand_lowest_seen"):
            if key not in result:
                continue  # not in this task's scenes
            t, r = result[key]["translation_mm"], result[key]["rotation_deg"]
            print(
                f"{key}: {t.get('median')} / {t.get('p90')} mm, {r.get('median')} / {r.get('p90')} deg "
                f"(median / p90), missed {result[key]['missed']} of {result['scenes']}",
                file=sys.stderr,
            )
        refined, views = result["hand_eye_views_refined"]
        if views:
            he = result["seconds_per_hand_eye"]
            print(f"hand-eye: {refined} of {views} views refined, {he['median']} s per scene (median)", file=sys.stderr)
    return 0


def _ablation_flags(p) -> None:
    import dataclasses

    from policies.experiments.ablation import HELP, AblationConfig

    p.add_argument("--out", default="runs/ablation", help="folder of all stages (default runs/ablation)")
    for field in dataclasses.fields(AblationConfig):
        default = field.default
        kind = str if isinstance(default, tuple) else type(default)
        shown = ",".join(default) if isinstance(default, tuple) else default
        p.add_argument(
            "--" + field.name.replace("_", "-"), type=kind, default=shown, help=f"{HELP[field.name]} (default {shown})"
        )
    p.add_argument("--json", action="store_true", help="the results JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _cmd_ablation(args) -> int:
    import dataclasses
    from pathlib import Path

    from policies.experiments.ablation import AblationConfig, run_ablation

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(AblationConfig)}
    values["variants"] = tuple(v.strip() for v in values["variants"].split(",") if v.strip())
    summary = run_ablation(AblationConfig(**values), Path(args.out), progress=not args.quiet)
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    return 0
