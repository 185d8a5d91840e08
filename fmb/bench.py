"""`fmb bench ...`: speed and quality benchmarks, one subcommand per layer, JSON on stdout."""

from __future__ import annotations

import json


def register(sub) -> None:
    """Add the `bench` command group to the `fmb` subparsers."""
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
    p.set_defaults(handler=_cmd_policy)
    p = bench_sub.add_parser("ros", help="observation-to-command latency and jitter of a skill through the ROS graph")
    p.add_argument("--cycles", type=int, default=300, help="10 Hz control cycles measured (default 300)")
    p.add_argument("--checkpoint", default="", help="policy run or checkpoint (default: the scripted expert)")
    p.add_argument("--skill", default="grasp", help="skill / simulated task (default grasp)")
    p.add_argument("--json", action="store_true", help="JSON only on stdout")
    p.set_defaults(handler=_cmd_ros)


def _cmd_cad(args) -> int:
    import sys

    from cad.bench import bench_cad
    from fmb.errors import check_range

    check_range("--repeats", args.repeats, 1, 100)
    result = bench_cad(repeats=int(args.repeats))
    print(json.dumps(result, indent=1, sort_keys=True))
    if not args.json:
        print(
            f"standard set: {result['set_seconds_median']:.2f} s median; "
            f"single part: {result['part_seconds_median']:.3f} s median",
            file=sys.stderr,
        )
    return 0


def _cmd_sim(args) -> int:
    from fmb.errors import check_range
    from sim.backend import BACKENDS
    from sim.bench import bench_sim
    from sim.exceptions import UnknownNameError

    if args.backend not in BACKENDS:
        raise UnknownNameError(f"unknown backend {args.backend!r}; known: {', '.join(BACKENDS)}")
    check_range("--episodes", args.episodes, 1, 1000)
    print(json.dumps(bench_sim(args.backend, int(args.episodes)), indent=1, sort_keys=True))
    return 0


def _cmd_policy(args) -> int:
    from fmb.errors import check_range
    from policies.bench import bench_policy

    check_range("--repeats", args.repeats, 1, 1000)
    print(json.dumps(bench_policy(int(args.repeats)), indent=1, sort_keys=True))
    return 0


def _cmd_ros(args) -> int:
    import sys

    from fmb.errors import check_range
    from fmb_ros.bench import bench_ros

    check_range("--cycles", args.cycles, 10, 100_000)
    result = bench_ros(int(args.cycles), args.checkpoint, args.skill)
    print(json.dumps(result, indent=1, sort_keys=True))
    if not args.json:
        lat = result["latency_ms"]
        print(
            f"latency median {lat.get('median')} ms, p99 {lat.get('p99')} ms; "
            f"missed {result['missed_cycles']} of {result['cycles']} cycles",
            file=sys.stderr,
        )
    return 0
