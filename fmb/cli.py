"""The `fmb` command: one entry point, one subcommand group per layer.

Each layer registers its own subcommands (`cad.cli.register`, ...). Handlers only parse, call
the library and report. Any `FmbError` becomes a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from fmb_core.errors import FmbError

EXIT_USAGE = 2

EXTRAS = {
    **dict.fromkeys(("numpy", "shapely", "trimesh", "manifold3d", "networkx", "lxml", "matplotlib", "tqdm"), "cad"),
    **dict.fromkeys(("mujoco", "pybullet", "pybullet_data", "gymnasium", "scipy", "pyarrow", "av"), "sim"),
    **dict.fromkeys(("torch", "diffusers", "safetensors"), "learn"),
    "build123d": "step",
    "rclpy": "ros",
    "open3d": "perception",
    "mink": "ik",
}
"""Third-party module -> the setup.py extra that installs it (for the missing-dependency message)."""


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

    cad_cli.register(sub)
    sim_cli.register(sub)
    policies_cli.register(sub)
    ros_cli.register(sub)
    bench.register(sub)
    quickstart.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `fmb` with `argv` (default: sys.argv[1:]); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FmbError as e:
        print(f"fmb: error: {e}", file=sys.stderr)
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
