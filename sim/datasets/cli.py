"""`fmb data ...`: bring recorded data into episode stores and take it out again.

fmb data import-fmb DIR --out OUT          FMB's released .npy trajectories -> OUT/<primitive>/
fmb data import-bag BAG --out STORE        a rosbag2 bag (MCAP or sqlite3) -> one episode
fmb data export STORE --out DIR            an episode store -> a LeRobot dataset (v2.1 or v3.0)
fmb data import-lerobot DIR --out STORE    a LeRobot dataset (v2.0, v2.1, v3.0) -> a store
"""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    """Add the `data` command group to the `fmb` subparsers."""
    data = sub.add_parser("data", help="import FMB's released data, rosbags and LeRobot datasets; export to LeRobot")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    p = data_sub.add_parser(
        "import-fmb",
        help="FMB's released .npy trajectories -> one episode store per primitive, OUT/<primitive>/ (resumable)",
    )
    p.add_argument("src", type=Path, help="folder of FMB .npy files (searched recursively), or one file")
    p.add_argument("--out", type=Path, required=True, help="folder for the primitives' stores (created, or resumed)")
    p.add_argument(
        "--primitives",
        default="grasp,place_on_fixture,regrasp,rotate,insert",
        help="comma-separated primitives to import, or 'all' (adds move_up, go_to_board) (default the five skills)",
    )
    p.add_argument(
        "--cameras",
        default="side_1,side_2,wrist_1,wrist_2",
        help="comma-separated cameras whose RGB images to import, or 'none' (default all four)",
    )
    p.add_argument("--depth", action="store_true", help="also import depth images (float32 metres)")
    p.add_argument(
        "--depth-scale", type=float, default=1.0, help="millimetres per raw depth unit [mm] (default 1, RealSense)"
    )
    p.add_argument(
        "--action-units",
        default="normalized",
        help="normalized (FMB's release: divided by 0.06 m / 0.25 rad) or si (default normalized)",
    )
    p.add_argument("--min-steps", type=int, default=2, help="shorter primitive segments are left out (default 2)")
    p.add_argument("--skip-bad", action="store_true", help="skip and count malformed files instead of stopping")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_import_fmb)

    p = data_sub.add_parser(
        "import-bag",
        help="rosbag2 bags (MCAP or sqlite3) -> an episode store, aligned at the control rate (resumable)",
    )
    p.add_argument("bags", type=Path, nargs="+", help="bag folder(s) (holding metadata.yaml) or .mcap/.db3 file(s)")
    p.add_argument("--out", type=Path, required=True, help="episode store folder (created, or resumed)")
    p.add_argument("--task", default="teleop", help="the episodes' skill label, e.g. insert (default teleop)")
    p.add_argument("--success", choices=("yes", "no", "unknown"), default="unknown", help="operator's verdict")
    p.add_argument("--cameras", default="", help="comma-separated cameras: <ns>/<cam>/<rgb topic> (default none)")
    p.add_argument("--depth", action="store_true", help="also record <ns>/<cam>/<depth topic>")
    p.add_argument(
        "--rgb-topic",
        default="image_raw",
        help="each camera's colour topic (default image_raw; realsense: color/image_raw)",
    )
    p.add_argument(
        "--depth-topic",
        default="depth",
        help="each camera's depth topic (default depth; realsense: aligned_depth_to_color/image_raw)",
    )
    p.add_argument(
        "--points", type=int, default=0, help="record /points (PointCloud2) resampled to N points (default 0: none)"
    )
    p.add_argument("--namespace", default="", help="prefix of every topic (default none)")
    p.add_argument("--rate", type=float, default=10.0, help="control rate of the steps [Hz] (default 10)")
    p.add_argument(
        "--tolerance", type=float, default=150.0, help="largest age of a message used at a step [ms] (default 150)"
    )
    p.add_argument("--stamps", default="receive", help="receive (bag times) or header (header.stamp) (default receive)")
    p.add_argument("--on-stale", default="split", help="split (cut episodes at stale steps) or error (default split)")
    p.add_argument("--min-steps", type=int, default=2, help="shorter runs of good steps are left out (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_import_bag)

    p = data_sub.add_parser("export", help="an episode store -> a LeRobot dataset (v2.1 or v3.0)")
    p.add_argument("store", type=Path, help="episode store folder")
    p.add_argument("--out", type=Path, required=True, help="dataset folder (created, or replaced if a dataset)")
    p.add_argument("--format", default="lerobot", choices=("lerobot",), help="output format (default lerobot)")
    p.add_argument("--version", default="v3.0", help="LeRobot codebase version: v3.0 or v2.1 (default v3.0)")
    p.add_argument("--task-text", default=None, help="language instruction of every episode (default its task)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_export)

    p = data_sub.add_parser(
        "import-lerobot", help="a LeRobot dataset (v2.0, v2.1, v3.0; ours or foreign) -> an episode store (resumable)"
    )
    p.add_argument("src", type=Path, help="dataset folder holding meta/info.json")
    p.add_argument("--out", type=Path, required=True, help="episode store folder (created, or resumed)")
    p.add_argument("--max-episodes", type=int, default=None, help="import only the first N episodes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_import_lerobot)

    p = data_sub.add_parser(
        "info", help="what an episode store holds: episodes, skills, objects, lengths, keys, success"
    )
    p.add_argument("store", type=Path, help="episode store folder")
    p.add_argument("--sheet", type=Path, default=None, help="also write a contact sheet PNG (first/last frames)")
    p.add_argument("--episodes", type=int, default=12, help="episodes on the contact sheet (default 12)")
    p.set_defaults(handler=_cmd_info)


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _cmd_import_fmb(args) -> int:
    from sim.datasets.fmb_import import import_fmb
    from sim.datasets.fmb_release import PRIMITIVES, FmbImportConfig

    primitives = PRIMITIVES if args.primitives.strip() == "all" else _split(args.primitives)
    cameras = () if args.cameras.strip() == "none" else _split(args.cameras)
    config = FmbImportConfig(
        primitives=primitives,
        cameras=cameras,
        depth=args.depth,
        depth_scale=args.depth_scale / 1e3,
        action_units=args.action_units,
        skip_bad=args.skip_bad,
        min_steps=args.min_steps,
    )
    print(json.dumps(import_fmb(args.src, args.out, config, progress=not args.quiet), indent=1))
    return 0


def _cmd_import_bag(args) -> int:
    from sim.datasets.rosbag import BagImportConfig, import_bags
    from sim.recording import TopicMap

    topics = TopicMap(
        cameras=_split(args.cameras),
        depth=args.depth,
        rgb_topic=args.rgb_topic,
        depth_topic=args.depth_topic,
        point_count=args.points,
        namespace=args.namespace,
    )
    config = BagImportConfig(
        topics=topics,
        rate=args.rate,
        tolerance=args.tolerance / 1e3,
        stamps=args.stamps,
        task=args.task,
        success={"yes": True, "no": False}.get(args.success),
        min_steps=args.min_steps,
        on_stale=args.on_stale,
    )
    print(json.dumps(import_bags(args.bags, args.out, config, progress=not args.quiet), indent=1))
    return 0


def _cmd_export(args) -> int:
    from sim.lerobot import export_lerobot
    from sim.store import EpisodeStore

    store = EpisodeStore.open(args.store)
    out = export_lerobot(store, args.out, args.task_text, progress=not args.quiet, version=args.version)
    print(json.dumps({"dataset": str(out), "version": args.version, "episodes": len(store)}, indent=1))
    return 0


def _cmd_import_lerobot(args) -> int:
    from sim.lerobot import import_lerobot

    store = import_lerobot(args.src, args.out, args.max_episodes, progress=not args.quiet)
    print(json.dumps({"store": str(store.root), "episodes": len(store), "task": store.meta.get("task")}, indent=1))
    return 0


def _cmd_info(args) -> int:
    from sim.datasets.info import contact_sheet, store_info
    from sim.store import EpisodeStore

    info = store_info(args.store)
    if args.sheet is not None:
        info["sheet"] = str(contact_sheet(EpisodeStore.open(args.store), args.sheet, args.episodes).absolute())
    print(json.dumps(info, indent=1))
    return 0
