"""The `fmb` command: one entry point, one subcommand group per layer.

Each layer registers its own subcommands (`cad.cli.register`, ...). Handlers only parse, call
the library and report. Any `FmbError` becomes a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from fmb_core.errors import FmbError, ParameterError

EXIT_USAGE = 2

EXTRAS = {
    **dict.fromkeys(("numpy", "shapely", "trimesh", "manifold3d", "networkx", "lxml", "matplotlib", "tqdm"), "cad"),
    **dict.fromkeys(("mujoco", "pybullet", "pybullet_data", "gymnasium", "scipy", "pyarrow", "av", "rosbags"), "sim"),
    **dict.fromkeys(("torch", "diffusers", "safetensors"), "learn"),
    "build123d": "step",
    "rclpy": "ros",
    "open3d": "perception",
    "mink": "ik",
    "ray": "scale",
}
"""Third-party module -> the setup.py extra that installs it (for the missing-dependency message)."""

FIELD_FLAGS = {"num_samples": "--candidates", "preset": "--config", "max_windows": "--windows"}
"""The core's parameter names whose flag is not the option of the same `dest` (see `flag_for`)."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every layer's subcommands."""
    parser = argparse.ArgumentParser(
        prog="fmb",
        description="Functional Manipulation Benchmark stack: printable objects, simulation, "
        "policies and ROS 2 skills.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from cad import cli as cad_cli
    from fmb import bench, quickstart
    from fmb_ros import cli as ros_cli  # imports no rclpy: `fmb --help` works without the [ros] extra
    from policies import cli as policies_cli
    from sim import cli as sim_cli
    from sim.datasets import cli as data_cli

    cad_cli.register(sub)
    sim_cli.register(sub)
    data_cli.register(sub)
    policies_cli.register(sub)
    ros_cli.register(sub)
    bench.register(sub)
    quickstart.register(sub)
    return parser


def flag_for(parser: argparse.ArgumentParser, args: argparse.Namespace, field: str) -> str:
    """The command line's name for the core's parameter `field`: the option of the chosen
    subcommand whose dest is `field` ("action_horizon" -> "--action-horizon"), else FIELD_FLAGS's,
    else `field` itself (a parameter no flag sets)."""
    leaf = parser
    while True:  # down the chosen subcommands
        subs = [a for a in leaf._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or getattr(args, subs[0].dest, None) not in subs[0].choices:
            break
        leaf = subs[0].choices[getattr(args, subs[0].dest)]
    options = {a.dest: a.option_strings[-1] for a in leaf._actions if a.option_strings}
    return options.get(field) or FIELD_FLAGS.get(field, field)


def main(argv: list[str] | None = None) -> int:
    """Run `fmb` with `argv` (default: sys.argv[1:]); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FmbError as e:
        message = e.named(flag_for(parser, args, e.field)) if isinstance(e, ParameterError) else str(e)
        print(f"fmb: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        extra = EXTRAS.get(top, "all")
        print(f"fmb: error: missing dependency {top!r}; install it with: pip install -e .[{extra}]", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fmb: interrupted; nothing partial was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
