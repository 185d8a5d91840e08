"""`fmb train`, `fmb eval` and `fmb results`: train a policy on episode stores, evaluate it in
simulation, compare evaluations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path


def register(sub) -> None:
    """Add `train`, `eval` and `results` to the `fmb` subparsers."""
    from fmb_core.threads import add_threads_flag
    from policies.flags import add_goals_flag, add_hand_eye_flag, add_sensor_flag
    from sim.parallel import add_executor_flags
    from sim.perceived_goals import IN_HAND_SOURCES

    p = sub.add_parser("train", help="train a diffusion policy (or the BC baseline) on demonstrations")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="episode store folder(s) (fmb sim collect)")
    p.add_argument("--out", type=Path, required=True, help="run folder (created; --resume continues it)")
    p.add_argument("--task", default="", help="skill the data must hold (default: whatever it holds)")
    p.add_argument(
        "--config",
        default="small",
        help="preset: tiny (a smoke run: learns little), small (this CPU), base, large (GPU) (default small)",
    )
    p.add_argument("--policy-type", default="diffusion", help="diffusion or bc (default diffusion)")
    p.add_argument("--steps", type=int, default=None, help="gradient steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per step (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the preset's)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="train in N processes with DistributedDataParallel: one per GPU (nccl), or N CPU processes (gloo) "
        "with --device cpu or no GPU; --batch-size stays the whole step's batch, split between them, and --lr is "
        "kept (under torchrun leave it out) (default 1)",
    )
    p.add_argument("--image", default="", help="also encode this camera image, e.g. rgb/wrist (default none)")
    p.add_argument("--points", type=int, default=None, help="local cloud points, 0 = none (default: preset)")
    p.add_argument(
        "--state",
        default="",
        help="comma-separated state inputs, of: tcp_pose, tcp_vel, wrench, q, dq, gripper "
        "(default tcp_pose,tcp_vel,wrench,gripper; with --goal: gripper, and the goal is added)",
    )
    p.add_argument("--prediction", default="sample", help="diffusion target: sample or epsilon (default sample)")
    p.add_argument(
        "--goal",
        default="",
        help="condition on this task target, e.g. tcp_goal; 'skill': each skill on its own (several --data "
        "stores of different skills: one policy conditioned on the skill) (default none)",
    )
    p.add_argument(
        "--goal-noise",
        default="",
        metavar="MM,DEG",
        help="Gaussian noise on the --goal input per training window: position [mm] and angle [deg] standard "
        "deviations per axis, e.g. 1.0,1.0 or one number for both (default off); tolerates perception's error",
    )
    p.add_argument("--object-one-hot", action="store_true", help="condition on the object's shape family (FMB)")
    p.add_argument("--gravmap", action="store_true", help="condition position denoising on GravMaps of sub-goals")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_flag(p, "training")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained policy in simulation (success per shape, videos)")
    p.add_argument(
        "--policy",
        action="append",
        required=True,
        metavar="[SKILL=]RUN",
        help="run folder or checkpoint folder; for a chain task, once per stage as SKILL=RUN "
        "(RUN 'expert': the scripted expert runs that stage), a plain RUN for the stages not named",
    )
    p.add_argument(
        "--task", default="", help="task (default: the policy's skill); vertical_chain, horizontal_chain: a chain"
    )
    p.add_argument("--episodes", type=int, default=50, help="episodes (default 50)")
    p.add_argument("--split", default="all", help="object split (cad.splits): all, family_holdout, ... (default all)")
    p.add_argument("--side", default="", help="train or test side of the split (default: test, or train for 'all')")
    p.add_argument("--families", default="", help="comma-separated shape families (default all of the side)")
    p.add_argument("--backend", default="mujoco", help="mujoco or pybullet (default mujoco)")
    p.add_argument("--candidates", type=int, default=1, help="action chunks sampled per decision (default 1)")
    p.add_argument("--action-horizon", type=int, default=0, help="actions per chunk before re-planning")
    p.add_argument(
        "--select",
        default="none",
        help="candidate selection: none, implicit, explicit, or oracle (each candidate tried in the simulator: "
        "the bound of any reward; slow) (default none)",
    )
    p.add_argument("--reward", default="", help="reward model folder for --select (fmb prefs train)")
    p.add_argument("--ensemble", type=float, default=0.0, help="temporal ensembling weight, 0 = off (default 0)")
    p.add_argument("--placement", default="train", help="board placement: train or novel (outside the demos' box)")
    p.add_argument("--guidance", type=float, default=0.0, help="sub-goal cost guidance scale, 0 = off (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the diffusion's initial noise (default 1)")
    add_goals_flag(p)
    add_sensor_flag(p)
    p.add_argument(
        "--in-hand",
        default="checked",
        choices=IN_HAND_SOURCES,
        help="with --goals perceived, the held peg's pose in the hand for tcp_goal: checked = the grasp command's "
        "unless the cameras see the peg held more than --in-hand-tolerance from it, then theirs; commanded = the "
        "grasp command's (a robot's own); estimated = the cameras'; all are measured against the simulator "
        "(default checked)",
    )
    p.add_argument(
        "--in-hand-tolerance",
        default="2,2",
        metavar="MM,DEG",
        help="--in-hand checked: how far [mm] and turned [deg] the cameras may see the held peg from the command "
        "before their estimate is taken (default 2,2)",
    )
    add_hand_eye_flag(p)
    p.add_argument("--max-steps", type=int, default=0, help="step limit of each episode (default 0 = the task's)")
    p.add_argument(
        "--approach",
        default="on",
        choices=("on", "off"),
        help="a chain's learned insert and rotate: on = planned moves first (as a robot's motion planner): the held "
        "peg to 40 mm above its goal before insert; the wrist the long way round before rotate where the short way "
        "lacks joint room; off = the policies do it all (default on)",
    )
    p.add_argument(
        "--stage-attempts",
        type=int,
        default=0,
        help="a chain's stages: N >= 1 gives each attempt its skill's own step limit and retries a stage up to N "
        "attempts (the policy reset, its goal re-perceived), then the episode fails there, as the ROS task executor "
        "does; 0 = a stage runs until it succeeds or the chain's limit (default 0)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    add_executor_flags(p)
    p.add_argument("--seed", type=int, default=100_000, help="first episode seed (default 100000)")
    p.add_argument("--videos", type=int, default=2, help="episodes rendered to mp4 when --out is given (default 2)")
    p.add_argument("--out", type=Path, default=None, help="folder for result.json and videos")
    p.add_argument("--json", type=Path, default=None, help="write the result JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_flag(p, "rollout")
    p.set_defaults(handler=_cmd_eval)

    p = sub.add_parser("results", help="evaluation results side by side: a Markdown table (success, goals, errors)")
    p.add_argument("files", type=Path, nargs="+", help="result JSON files (fmb eval --json, eval/*/result.json)")
    p.add_argument("--labels", default="", help="comma-separated row labels (default: each file's name)")
    p.set_defaults(handler=_cmd_results)

    from policies.preference import cli as preference_cli

    preference_cli.register(sub)
    from policies.gravmap import cli as gravmap_cli

    gravmap_cli.register(sub)


def parse_goal_noise(text: str) -> dict:
    """`--goal-noise MM,DEG` (or one number for both) -> the TrainConfig fields, in SI ({} when empty)."""
    import math

    from fmb_core.errors import ParameterError

    if not text.strip():
        return {}
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ParameterError(f"--goal-noise {text!r}: expected MM,DEG (two numbers >= 0, e.g. 1.0,1.0) or one number")
    mm, deg = values if len(values) == 2 else values * 2
    return {"goal_noise_position": mm * 1e-3, "goal_noise_rotation": math.radians(deg)}


def _cmd_train(args) -> int:
    from fmb_core.errors import ParameterError
    from policies.common.dataset import open_stores
    from policies.config import preset
    from policies.train import train

    extra = {"prediction": args.prediction} | ({} if args.points is None else {"points": args.points})
    extra |= {"conditioners": ("gravmap",)} if args.gravmap else {}
    if args.state:
        extra["state_keys"] = tuple(k.strip() for k in args.state.split(",") if k.strip())
    policy, training = preset(args.config, policy_type=args.policy_type, image_key=args.image, goal=args.goal, **extra)
    changes = {
        k: v
        for k, v in {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "checkpoint_every": args.checkpoint_every,
        }.items()
        if v is not None
    }
    changes |= parse_goal_noise(args.goal_noise)
    if changes.get("goal_noise_position") or changes.get("goal_noise_rotation"):
        if not args.goal:
            raise ParameterError("--goal-noise perturbs the goal input: set --goal too")
    training = dataclasses.replace(training, device=args.device, seed=args.seed, **changes)
    stores = open_stores(args.data)
    if args.task:
        held = sorted({s.meta.get("task") for s in stores})
        if held != [args.task]:
            raise ParameterError(f"--task {args.task}: the data holds {', '.join(map(str, held))}")
    if args.object_one_hot:
        from cad.shapes import FMB_SHAPES

        policy = dataclasses.replace(policy, families=tuple(FMB_SHAPES))
    summary = train(
        args.data,
        args.out,
        policy,
        training,
        resume=args.resume,
        progress=not args.quiet,
        threads=args.threads,
        devices=args.devices,
    )
    if summary:  # under torchrun, rank 0's only
        print(json.dumps(summary, indent=1))
    return 0


def _cmd_eval(args) -> int:
    from fmb_core.errors import ParameterError
    from policies.experiments.evaluate import PolicyRunSpec, evaluate
    from policies.flags import parse_in_hand_tolerance, parse_policies
    from policies.runtime.runner import RunnerConfig
    from sim.perceived_goals import PerceivedGoalConfig
    from sim.perception.hand_eye import HandEyeConfig

    offset_mm, angle_deg = parse_in_hand_tolerance(args.in_hand_tolerance)
    side = args.side or ("train" if args.split == "all" else "test")
    if side not in ("train", "test"):
        raise ParameterError(f"--side {args.side!r}: expected train or test")
    families = tuple(f.strip() for f in args.families.split(",") if f.strip()) or None
    runner = RunnerConfig(
        num_samples=args.candidates,
        ensemble=args.ensemble,
        action_horizon=args.action_horizon,
        guidance=args.guidance,
        temperature=args.temperature,
        select=args.select,
        reward=args.reward,
    )
    policy, stages = parse_policies(args.policy)
    spec = PolicyRunSpec(
        policy,
        task=args.task,
        stages=stages,
        stage_attempts=args.stage_attempts,
        approach=args.approach == "on",
        backend=args.backend,
        split=args.split,
        side=side,
        families=families,
        runner=runner,
        device=args.device,
        placement=args.placement,
        goals=args.goals,
        max_steps=args.max_steps,
        sensor=args.sensor,
        perception=PerceivedGoalConfig(
            in_hand=args.in_hand,
            in_hand_offset=offset_mm / 1e3,
            in_hand_angle=angle_deg,
            hand_eye=HandEyeConfig(enabled=args.hand_eye == "on"),
        ),
    )
    from sim.parallel import executor_from_args

    executor = executor_from_args(args)  # an unreachable --ray-address fails now
    spec.build()  # fail fast on a bad checkpoint, task or split before any episode runs
    if not args.quiet:
        import sys

        from fmb_core.errors import check_range
        from sim.collect import rollout_budget

        check_range("--episodes", args.episodes, 1, 1_000_000)
        budget = rollout_budget(executor.workers, args.threads)
        print(f"{executor.describe()}, each: {budget.describe()}", file=sys.stderr)
    result = evaluate(
        spec,
        args.episodes,
        args.seed,
        executor.workers,
        args.videos if args.out else 0,
        args.out,
        not args.quiet,
        threads=args.threads,
        executor=executor,
    )
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    from sim.collect import summary_line

    print(summary_line(result))
    return 0


def _cmd_results(args) -> int:
    from fmb_core.errors import ParameterError
    from policies.experiments.report import read_result, results_table

    labels = [s.strip() for s in args.labels.split(",")] if args.labels else []
    if labels and len(labels) != len(args.files):
        raise ParameterError(f"--labels: {len(labels)} labels for {len(args.files)} files")
    names = labels or [_result_name(f) for f in args.files]
    if len(set(names)) != len(names):
        raise ParameterError("two results would share a row label; pass --labels")
    print("\n".join(results_table({n: read_result(f) for n, f in zip(names, args.files)})))
    return 0


def _result_name(file: Path) -> str:
    """A row label: the file's stem, or its folder's name for a quickstart's eval/<name>/result.json."""
    return file.parent.name if file.name == "result.json" else file.stem
