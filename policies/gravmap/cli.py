"""`fmb gravmap show`: a picture of a demonstration's GravMap over its point cloud."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    """Add `gravmap` (with `show`) to the `fmb` subparsers."""
    p = sub.add_parser("gravmap", help="GravMap sub-goal maps (after GravMAD)")
    gsub = p.add_subparsers(dest="gravmap_command", metavar="COMMAND", required=True)
    s = gsub.add_parser("show", help="draw the GravMap of a demonstration's next keypose over its point cloud")
    s.add_argument("--episode", required=True, help="STORE/INDEX (or the episode's npz), or INDEX with --data")
    s.add_argument("--data", type=Path, default=None, help="episode store (then --episode is an index)")
    s.add_argument("--step", type=int, default=0, help="window step whose next keypose is drawn (default 0)")
    s.add_argument("--out", type=Path, required=True, help="PNG to write")
    s.set_defaults(handler=_cmd_show)


def _cmd_show(args) -> int:
    from policies.gravmap.show import parse_episode, show_gravmap

    root, index = parse_episode(args.episode, args.data)
    print(json.dumps(show_gravmap(root, index, args.out, args.step), indent=1))
    return 0
