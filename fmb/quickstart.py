"""`fmb quickstart`: the README's main job, end to end on one CPU machine (about 20 minutes).

Stages (each shows progress; a rerun reuses what is already done):

1. the FMB object set (print files, simulator assets, manifest) and its contact-sheet preview;
2. scripted-expert demonstrations of one skill (default: insertion) on the training side of a
   split (default: family_holdout, so hexagon and star pegs are never seen in training); for a
   chain task (`--task vertical_chain`) chained demonstrations, cut into one store per skill
   (`fmb sim stages`), and in stage 3 a policy per skill (`--bc-steps 0` leaves BC out);
3. the `small` diffusion policy and the BC baseline, trained on those demonstrations, both
   conditioned on the skill's goal, `tcp_goal`: the hand's pose at which the held peg is in its
   hole (the hole's pose combined with the in-hand grasp; read from the task specification here,
   from perception and the grasp on a robot). `--goal hole` conditions on the hole's pose alone
   (the in-hand grasp depth is then left to the point cloud), `--goal ""` on nothing;
4. both evaluated on seen objects and on the held-out families;
5. a Markdown report with plots: runs/quickstart/report.md.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class QuickstartConfig:
    """Every field is a flag of `fmb quickstart` (underscores become dashes)."""

    task: str = "insert"
    demos: int = 100
    split: str = "family_holdout"
    diffusion_steps: int = 2500
    bc_steps: int = 2000
    eval_episodes: int = 24
    workers: int = 2
    point_cloud: int = 4096
    image_size: int = 128
    config: str = "small"
    goal: str = "tcp_goal"
    action_horizon: int = 2
    eval_max_steps: int = 0
    eval_goals: str = "perceived,truth"
    threads: int = 0

    def __post_init__(self):
        from fmb_core.errors import ParameterError, check_choice

        if not self.goal_sources:
            raise ParameterError("--eval-goals must name at least one of perceived, truth")
        if chain_stages(self.task):  # each stage's policy conditions on its own skill's goal
            from policies.config import SKILL_GOAL

            if self.goal not in (SKILL_GOAL, QuickstartConfig.goal):
                raise ParameterError(
                    f"--goal {self.goal}: the skills of a chain ({self.task}) each condition on their own goal; "
                    f"leave --goal out or pass --goal {SKILL_GOAL}"
                )
            object.__setattr__(self, "goal", SKILL_GOAL)
        for goals in self.goal_sources:
            check_choice("--eval-goals", goals, tuple(GOAL_LABELS))

    @property
    def goal_sources(self) -> tuple[str, ...]:
        """The goal sources of `eval_goals`, in order."""
        return tuple(dict.fromkeys(g.strip() for g in self.eval_goals.split(",") if g.strip()))


def chain_stages(task: str) -> tuple[str, ...]:
    """The stage names of `task` when it is a chain (vertical_chain, horizontal_chain), else ()."""
    from sim.tasks import TASKS

    return tuple(getattr(TASKS.get(task), "stages", ()))


SIDES = (("seen", "train"), ("held-out", "test"))
"""(report label, split side) of the evaluated object sides."""
GOAL_LABELS = {"perceived": "", "truth": ", truth (upper bound)"}
"""Goal source -> what the report's objects column adds to the side's label."""

GOAL_SOURCE_WORDS = {
    "perceived": "rows without a suffix: as a robot, the goal from CAD registration on the side cameras' cloud"
    " (D415-like sensor model, sim.sensor; each camera's calibration refined on the robot's hand,"
    " sim.perception.hand_eye) and the grasp command, every action through the safety filter",
    "truth": "rows marked truth: the simulator's own targets, exact depth, no filter (an upper bound)",
}

GOAL_WORDS = {
    "tcp_goal": "the hand's pose with the held peg in its hole (hole pose and in-hand grasp)",
    "hole": "the target hole's pose",
    "skill": "each skill's own goal (sim.tasks.skill_goals), fixed when its stage starts",
}

HELP = {
    "task": "skill to learn, or a chain (vertical_chain): its skills, chained",
    "demos": "scripted-expert demonstrations to collect",
    "split": "object split (cad.splits): train on its train side, evaluate on both sides",
    "diffusion_steps": "training steps of the diffusion policy",
    "bc_steps": "training steps of the BC baseline",
    "eval_episodes": "evaluation episodes per policy and object side",
    "workers": "worker processes for collection and evaluation",
    "point_cloud": "points in the fused cloud of the three cameras",
    "image_size": "camera image side [px]",
    "config": "policy preset: tiny (a smoke run: learns little), small, base, large",
    "action_horizon": "actions executed per chunk before re-planning in evaluation (the policies keep their own"
    " default, 8, in their checkpoints)",
    "eval_max_steps": "step limit of each evaluation episode (0 = the task's, insert 100)",
    "eval_goals": "goal sources evaluated, comma-separated: perceived (perception, sensor model, safety filter: what a"
    " robot gets) and truth (the simulator's targets: an upper bound)",
    "goal": "task target the policies are conditioned on ('' = none: point cloud alone)",
    "threads": "CPU threads per process, 0 = the stack's budget for each stage (FMB_THREADS also sets it)",
}


def register(sub) -> None:
    """Add `fmb quickstart` to the `fmb` subparsers."""
    p = sub.add_parser(
        "quickstart",
        help="the main job: objects, demonstrations, diffusion policy + BC baseline, evaluation, report",
    )
    p.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder (default runs/quickstart)")
    for field in dataclasses.fields(QuickstartConfig):
        p.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(field.default),
            default=field.default,
            help=f"{HELP[field.name]} (default {field.default!r})",
        )
    p.add_argument("--objects-only", action="store_true", help="stop after the object set (no torch needed)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


STAGE_FIELDS = ("task", "demos", "split", "point_cloud", "image_size", "config", "goal")
"""Settings that the reusable stages (demonstrations, trained policies) depend on."""


def check_reusable(cfg: QuickstartConfig, out: Path) -> None:
    """Record the stage settings in `out`/quickstart.json, or refuse (ParameterError) when the
    folder holds stages made with different ones: reusing them would mix settings, and
    redoing them would overwrite saved work."""
    from fmb_core.errors import ParameterError
    from policies.config import default_state_keys

    wanted = {k: getattr(cfg, k) for k in STAGE_FIELDS}
    wanted["state_keys"] = list(default_state_keys(cfg.goal))  # the policies' state inputs
    record = out / "quickstart.json"
    if record.exists():
        try:
            made = json.loads(record.read_text())
        except ValueError as e:
            raise ParameterError(f"{record}: unreadable ({e}); remove it or pass another --out") from None
        changed = {k: (made.get(k), v) for k, v in wanted.items() if made.get(k) != v}
        if changed:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ParameterError(f"{out} holds a quickstart made with other settings ({what}); pass another --out")
        return
    made_before = [name for name in ("demos", "diffusion", "bc") if (out / name).exists()]
    if made_before:
        raise ParameterError(
            f"{out} holds quickstart stages ({', '.join(made_before)}) without a record of their settings"
            " (an earlier version made them); pass another --out or remove the folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(wanted, indent=1))


def run(args) -> int:
    from cad.export import export_set
    from cad.object_set import standard_set
    from cad.preview import render_contact_sheet

    t0 = time.perf_counter()
    out = Path(args.out).absolute()
    cfg = QuickstartConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(QuickstartConfig)})
    progress = not args.quiet
    stages = 1 if args.objects_only else 5
    if not args.objects_only:
        check_reusable(cfg, out)
    objects_dir = out / "objects"
    print(f"[1/{stages}] generating the FMB object set (54 pegs, 3 boards, fixture, 3 assembly boards)", flush=True)
    objects = standard_set()
    manifest = export_set(objects, objects_dir, progress=progress, force=False)
    preview = render_contact_sheet(list(objects.parts), objects_dir / "preview.png", title="FMB object set")
    print(f"  object set: {objects_dir} ({len(manifest['parts'])} parts, manifest.json); preview: {preview}")
    if args.objects_only:
        print(f"quickstart (objects only) done in {time.perf_counter() - t0:.1f} s")
        return 0
    report = run_learning(cfg, out, progress, t0)
    print(f"quickstart done in {(time.perf_counter() - t0) / 60:.1f} min")
    print(f"  report: {report}")
    return 0


def run_learning(cfg: QuickstartConfig, out: Path, progress: bool, t0: float) -> Path:
    """Stages 2-5; returns the report path."""
    from policies.common.checkpoint import trained_to
    from policies.config import default_state_keys, preset
    from policies.experiments.evaluate import PolicyRunSpec, earlier_result, evaluate
    from policies.experiments.report import (
        plot_losses,
        plot_success,
        plot_success_by_goal_error,
        video_still,
        write_report,
    )
    from policies.runtime.runner import RunnerConfig
    from policies.train import train
    from sim.collect import RunSpec, collect
    from sim.tasks import step_limit

    def stamp() -> str:
        return f"{(time.perf_counter() - t0) / 60:.1f} min"

    chain = chain_stages(cfg.task)
    data = out / "demos"
    print(f"[2/5] collecting {cfg.demos} {cfg.task} demonstrations ({cfg.split} train side) [{stamp()}]", flush=True)
    spec = RunSpec(
        cfg.task,
        cameras=("side_1", "side_2", "wrist"),
        image_size=(cfg.image_size, cfg.image_size),
        point_cloud=cfg.point_cloud,
        split=cfg.split,
        side="train",
    )
    summary = collect(spec, data, cfg.demos, seed=0, workers=cfg.workers, progress=progress, threads=cfg.threads)
    print(f"  {summary['episodes']} episodes in {data}")
    sources = {"": data}  # skill -> its demonstrations ("": the task's own)
    if chain:
        from sim.stages import split_stages

        stores = split_stages(data, out / "stages", progress=progress)
        sources = {skill: out / "stages" / skill for skill in chain}
        counts = ", ".join(f"{skill} {store['episodes']}" for skill, store in stores.items())
        print(f"  cut into stage episodes: {counts} ({out / 'stages'})")

    runs, stage_runs = {}, {}
    for kind, steps in (("diffusion", cfg.diffusion_steps), ("bc", cfg.bc_steps)):
        if chain and steps == 0:  # a chain trains a policy per skill: --bc-steps 0 leaves BC out
            continue
        for skill, source in sources.items():
            run_dir = out / (f"{kind}_{skill}" if skill else kind)
            what = f"the {cfg.config} {kind} policy" + (f" for {skill}" if skill else "")
            print(f"[3/5] training {what}, {steps} steps [{stamp()}]", flush=True)
            policy, training = preset(cfg.config, policy_type=kind, goal=cfg.goal)
            training = dataclasses.replace(training, steps=steps, checkpoint_every=max(steps // 2, 1), device="auto")
            runs[f"{kind} {skill}".strip()] = run_dir
            stage_runs.setdefault(kind, []).append((skill, str(run_dir)))
            if trained_to(run_dir) >= steps:
                print(f"  {run_dir} is already trained to {steps} steps")
                continue
            resume = trained_to(run_dir) > 0
            train([source], run_dir, policy, training, resume=resume, progress=progress, threads=cfg.threads)

    results: dict[str, dict[str, dict]] = {}
    videos = {}
    evaluations = [(f"{label}{GOAL_LABELS[g]}", side, g) for label, side in SIDES for g in cfg.goal_sources]
    for kind, per_skill in stage_runs.items():
        results[kind] = {}
        run_dir = out / kind if not chain else None
        for label, side, goals in evaluations:
            print(f"[4/5] evaluating {kind} on {label} objects, {cfg.eval_episodes} episodes [{stamp()}]", flush=True)
            spec = PolicyRunSpec(
                "" if chain else str(run_dir),
                stages=tuple(per_skill) if chain else (),
                task=cfg.task,
                split=cfg.split,
                side=side,
                runner=RunnerConfig(action_horizon=cfg.action_horizon),
                device="auto",
                max_steps=cfg.eval_max_steps,
                goals=goals,
            )
            folder = out / "eval" / f"{kind}_{label.split(',')[0]}{'' if goals == 'perceived' else '_' + goals}"
            runner = {"action_horizon": cfg.action_horizon, "goals": goals, "sensor": spec.sensor_name}
            made_by = spec if chain else run_dir
            result = earlier_result(folder, made_by, cfg.eval_episodes, runner, cfg.eval_max_steps)
            if result is not None:
                print(f"  reusing {folder / 'result.json'} (same checkpoint, same episodes)")
            else:
                result = evaluate(
                    spec,
                    cfg.eval_episodes,
                    workers=cfg.workers,
                    videos=1 if side == "train" and goals == cfg.goal_sources[0] else 0,
                    out=folder,
                    progress=progress,
                    threads=cfg.threads,
                )
            results[kind][label] = result
            if result.get("videos"):
                videos[kind] = Path(result["videos"][0])
            o = result["overall"]
            print(f"  {kind} / {label}: {o['successes']}/{o['episodes']} = {o['success_rate']:.0%}")

    print(f"[5/5] writing the report [{stamp()}]", flush=True)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    images = {
        "Success per shape family": plot_success(results, plots / "success_per_family.png"),
        "Success by the perceived goal's error": plot_success_by_goal_error(
            results, plots / "success_by_goal_error.png"
        ),
        "Training loss": plot_losses({k: r / "train_log.csv" for k, r in runs.items()}, plots / "loss.png"),
    }
    for kind, mp4 in videos.items():
        images[f"Video still ({kind}, seen object; full video: {mp4.relative_to(out)})"] = video_still(
            mp4, plots / f"still_{kind}.png"
        )
    facts = {
        "task": cfg.task,
        "demonstrations": f"{summary['episodes']} scripted-expert episodes ({data.relative_to(out)})",
        "objects": f"split {cfg.split}: trained on its train side, held-out = its test side",
        "policies": f"{cfg.config} diffusion ({cfg.diffusion_steps} steps)"
        + (f" and BC baseline ({cfg.bc_steps} steps)" if cfg.bc_steps or not chain else "")
        + (f", one per skill ({', '.join(chain)}) trained on its stage episodes (fmb sim stages)" if chain else ""),
        "observations": f"{', '.join(default_state_keys(cfg.goal))} + local point cloud "
        f"({cfg.point_cloud}-point fused cloud from 3 cameras at {cfg.image_size} px)"
        + (
            f" + the goal: {GOAL_WORDS.get(cfg.goal, 'the target ' + repr(cfg.goal))} relative to the TCP"
            " (trained on the task specification's)"
            if cfg.goal
            else ""
        ),
        "evaluation": f"{cfg.eval_episodes} episodes per row, seeds from 100000 (never used for demonstrations),"
        f" {cfg.action_horizon} actions executed per chunk, at most"
        f" {step_limit(cfg.task, cfg.eval_max_steps)} steps per episode",
        "goals in evaluation": "; ".join(GOAL_SOURCE_WORDS[g] for g in cfg.goal_sources),
        "wall time": stamp(),
    }
    (out / "results.json").write_text(json.dumps({"config": dataclasses.asdict(cfg), "results": results}, indent=1))
    return write_report(out, facts, results, images)
