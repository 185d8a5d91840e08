"""`fmb bench ablation`: what preference-scored selection and GravMap guidance each add.

One command trains and evaluates these variants on the same demonstrations:

    plain       the diffusion policy, first sample executed
    bc          the BC baseline (an MLP regressing the same chunk; not run unless named in
                --variants): what diffusion buys, e.g. on multimodal demonstrations
                (`fmb sim collect --expert-modes all`), where BC averages the modes
    implicit    + selection among N candidates by the implicit (diffusion-DPO) reward
    explicit    + selection by the explicit Bradley-Terry reward head
    oracle      + selection by trying each candidate in the simulator (not run unless named in
                --variants; slow): the bound of what any reward could pick among the same
                N candidates (`policies.preference.oracle`)
    gravmap     the policy trained with GravMap conditioning (sub-goals from the scene)
    both        GravMap policy + implicit selection

on three object sets: seen families, held-out families (the split's test side) and novel board
placements (seen families, the board outside the demonstrations' randomisation box). Preferences
are collected automatically in simulation with each reference policy (`fmb prefs collect`) and
the rewards trained on them (`fmb prefs train`). Every stage is kept in `out` and reused by a
rerun with the same settings, like the quickstart. The stages form a graph (`ablation_stages`)
that runs here one after the other, or with `--pipeline ray` as Ray tasks on a cluster, independent
trainings and evaluation cells at once (`sim.parallel.run_stages`). Writes `out/ablation.json`, `out/ablation.md`
and `out/ablation.png` (success with 95 % intervals per variant and object set), and
`out/pipeline.json` (each stage's start, end, host and process).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

from fmb_core import threads as thread_budget
from fmb_core.errors import ParameterError, check_choice, check_range
from sim.parallel import PIPELINES
from sim.perceived_goals import DEFAULT_GOAL_SOURCE, GOAL_SOURCES

VARIANTS = ("plain", "bc", "implicit", "explicit", "oracle", "gravmap", "both")
DEFAULT_VARIANTS = ("plain", "implicit", "explicit", "gravmap", "both")
OBJECT_SETS = {  # label: (split side, board placement)
    "seen": ("train", "train"),
    "held-out": ("test", "train"),
    "novel placement": ("train", "novel"),
}


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    """Every field is a flag of `fmb bench ablation` (underscores become dashes).

    Attributes:
        data: demonstration store the policies train on (e.g. runs/quickstart/demos).
        task: skill (the store's task).
        split: object split; the store must hold its train side.
        goal: task target the policies are conditioned on.
        config: policy preset of both policies (`policies.config.PRESETS`; tiny for a smoke run).
        steps: diffusion training steps of each policy.
        bc_steps: training steps of the BC baseline (the `bc` variant).
        seed: training seed of every policy and reward (initialisation and batches); one
            ablation folder per seed.
        prefs_states, prefs_candidates: preference collection per reference policy (states,
            candidates rolled out per state) and the progress difference below which two
            outcomes tie; prefs_temperature: initial-noise scale the preference candidates are
            drawn with (above 1 spreads their outcomes, fewer ties).
        reward_steps: training steps of each reward model.
        candidates: N, candidates scored per decision when selecting.
        temperature: initial-noise scale of the candidates when selecting (the plain and GravMap
            variants sample at 1, as trained).
        action_horizon: actions executed per chunk (0 = the policy's; 2 re-plans often enough
            for a diffusion policy to align a peg, see the README).
        episodes: evaluation episodes per (variant, object set).
        variants: which variants to run (comma-separated on the command line).
        workers: worker processes (or Ray actors) for preference collection and evaluation.
        executor: where evaluation episodes run (`sim.parallel.make_executor`): "auto" (Ray when
            `ray_address` or RAY_ADDRESS is set, else local processes), "local" or "ray".
        ray_address: Ray cluster for the evaluations, or for the stages with `pipeline` "ray" ("" =
            none; RAY_ADDRESS is read with "auto" or `pipeline` "ray").
        pipeline: how the stages run (`sim.parallel.run_stages`): "serial" (this process, one after
            the other) or "ray" (Ray tasks, independent stages at once; each stage's episodes then run
            in `workers` local processes on its node, so `executor` must not be "ray").
        train_gpus: GPUs each training stage reserves with `pipeline` "ray" (0: train on CPU).
        threads: CPU threads per process (0 = the stack's budget for each stage, fmb_core.threads).
        goals: the skills' goals in preference collection and evaluation: "truth" (the simulator's,
            an upper bound) or "perceived" (perception + safety filter, `PolicyRunSpec.goals`).
        max_steps: step limit of every episode, preference collection and evaluation alike (0 = the
            task's, insert 100).
    """

    data: str = "runs/quickstart/demos"
    task: str = "insert"
    split: str = "family_holdout"
    goal: str = "tcp_goal"
    config: str = "small"
    steps: int = 2500
    bc_steps: int = 2000
    seed: int = 0
    prefs_states: int = 40
    prefs_candidates: int = 8
    prefs_tie_tolerance: float = 0.01
    prefs_temperature: float = 1.0
    reward_steps: int = 300
    candidates: int = 16
    temperature: float = 1.0
    action_horizon: int = 2
    episodes: int = 24
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    workers: int = 2
    executor: str = "auto"
    ray_address: str = ""
    pipeline: str = "serial"
    train_gpus: float = 0.0
    threads: int = 0
    goals: str = DEFAULT_GOAL_SOURCE
    max_steps: int = 0

    def __post_init__(self):
        from policies.config import PRESETS

        check_choice("goals", self.goals, GOAL_SOURCES)
        check_choice("config", self.config, PRESETS)
        check_range("max_steps", self.max_steps, 0, 1_000_000)
        check_range("steps", self.steps, 1, 10_000_000)
        check_range("bc_steps", self.bc_steps, 1, 10_000_000)
        check_range("seed", self.seed, 0, 2**31 - 1)
        check_range("prefs_states", self.prefs_states, 1, 100_000)
        check_range("prefs_candidates", self.prefs_candidates, 2, 1024)
        check_range("reward_steps", self.reward_steps, 1, 10_000_000)
        check_range("candidates", self.candidates, 2, 4096)
        check_range("prefs_temperature", self.prefs_temperature, 0.0, 10.0)
        check_range("temperature", self.temperature, 0.0, 10.0)
        check_range("episodes", self.episodes, 1, 100_000)
        check_range("workers", self.workers, 1, 1024)
        check_choice("executor", self.executor, ("auto", "local", "ray"))
        check_choice("pipeline", self.pipeline, PIPELINES)
        check_range("train_gpus", self.train_gpus, 0.0, 64.0)
        if self.pipeline == "ray" and self.executor == "ray":
            raise ParameterError(
                "--pipeline ray runs each stage as a Ray task whose episodes run in local processes on its node; "
                "leave --executor out (or pass local)"
            )
        if self.train_gpus and self.pipeline != "ray":
            raise ParameterError("--train-gpus reserves GPUs for Ray tasks: it needs --pipeline ray")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ParameterError(f"--variants {','.join(self.variants)}: choose from {', '.join(VARIANTS)}")


HELP = {
    "data": "demonstration store the policies train on",
    "task": "skill (the store's task)",
    "split": "object split; the store holds its train side",
    "goal": "task target the policies are conditioned on",
    "config": "policy preset of both policies: tiny (a smoke run: learns little), small, base, large",
    "steps": "diffusion training steps of each policy",
    "bc_steps": "training steps of the BC baseline (the bc variant)",
    "seed": "training seed of every policy (one --out folder per seed)",
    "prefs_states": "states with ranked candidates collected per reference policy",
    "prefs_candidates": "candidates rolled out per preference state",
    "prefs_tie_tolerance": "progress difference below which two candidates' outcomes tie",
    "prefs_temperature": "initial-noise scale of the preference candidates",
    "reward_steps": "training steps of each reward model",
    "candidates": "N, candidates scored per decision when selecting",
    "temperature": "initial-noise scale of the candidates when selecting",
    "action_horizon": "actions executed per chunk (0 = the policy's)",
    "episodes": "evaluation episodes per variant and object set",
    "variants": f"comma-separated, from {','.join(VARIANTS)} (default: all but bc and oracle)",
    "workers": "worker processes (or Ray actors) for preference collection and evaluation",
    "executor": "where evaluation episodes run: auto (ray with --ray-address or RAY_ADDRESS), local or ray",
    "ray_address": "Ray cluster HOST:PORT for the evaluations, or for every stage with --pipeline ray "
    "(empty: RAY_ADDRESS, else none)",
    "pipeline": "serial: the stages one after the other here; ray: each stage a Ray task, independent ones at once "
    "(--out must be a folder every node sees)",
    "train_gpus": "GPUs each training stage reserves with --pipeline ray (0: CPU)",
    "threads": "CPU threads per process, 0 = the stack's budget for each stage (fmb_core.threads)",
    "goals": f"skill goals from {' or '.join(GOAL_SOURCES)} (perceived: perception + safety filter)",
    "max_steps": "step limit of every episode (0 = the task's)",
}


def run_ablation(cfg: AblationConfig, out: Path, progress: bool = True) -> dict:
    """Train, collect, fit rewards and evaluate as the module docstring says; returns the
    results {variant: {object set: evaluation}} with the settings.

    The work is a graph of stages (`ablation_stages`) run by `sim.parallel.run_stages`: one after
    the other here (`cfg.pipeline` "serial"), or as Ray tasks (`cfg.pipeline` "ray"), each started
    when the stages it needs are done, so independent trainings and evaluation cells run at once.
    Every stage finds its output in `out` when a rerun reaches it, and returns at once.
    """
    from sim.parallel import RAY_ADDRESS_ENV, check_reachable, make_executor, run_stages

    if cfg.pipeline == "ray":  # the stages' cluster
        address = cfg.ray_address or os.environ.get(RAY_ADDRESS_ENV, "").strip()
    else:  # the evaluations' cluster, if any
        address = make_executor(cfg.executor, cfg.workers, cfg.ray_address).address
    if address:
        check_reachable(address)  # before hours of training, not after
    t0 = time.perf_counter()
    out = Path(out).absolute()
    data = Path(cfg.data)
    if not (data / "store.json").exists():
        raise ParameterError(f"--data {data}: not an episode store (no store.json); collect one with fmb sim collect")
    _check_reusable(cfg, out)

    def say(text: str) -> None:
        print(f"[{(time.perf_counter() - t0) / 60:5.1f} min] {text}", flush=True)

    where = "in this process" if cfg.pipeline == "serial" else "as Ray tasks on " + (address or "a local Ray instance")
    stages = ablation_stages(cfg, out, progress and cfg.pipeline == "serial")
    say(f"{len(stages)} stages, {where}")
    done = run_stages(stages, cfg.pipeline, address, log=say if cfg.pipeline == "ray" else None)
    (out / "pipeline.json").write_text(
        json.dumps({name: {k: v for k, v in r.items() if k != "result"} for name, r in done.items()}, indent=1)
    )
    accuracy = {name.split("/", 1)[1]: r["result"] for name, r in done.items() if name.startswith("reward/")}
    results: dict[str, dict[str, dict]] = {}
    for variant in cfg.variants:
        results[variant] = {label: done[f"eval/{variant}/{label}"]["result"] for label in OBJECT_SETS}
    summary = {"config": dataclasses.asdict(cfg), "reward_accuracy": accuracy, "results": results}
    (out / "ablation.json").write_text(json.dumps(summary, indent=1, default=str))
    plot_ablation(results, out / "ablation.png")
    (out / "ablation.md").write_text(ablation_table(results, accuracy))
    say(f"done: {out / 'ablation.md'}")
    return summary


REWARD_OF = {"implicit": ("plain", "implicit"), "explicit": ("plain", "explicit"), "both": ("gravmap", "implicit")}
"""The selecting variants: (reference policy, reward kind)."""


def _policy_of(variant: str) -> str:
    """The policy a variant runs: its reward's reference, else its own (gravmap, bc), else plain."""
    return REWARD_OF[variant][0] if variant in REWARD_OF else variant if variant in ("gravmap", "bc") else "plain"


def ablation_stages(cfg: AblationConfig, out: Path, progress: bool = False) -> list:
    """The ablation as a stage graph (`sim.parallel.Stage`), dependencies first:

        train/<policy>            plain; bc and gravmap when a variant needs them
        prefs/<policy>            preferences collected with a selecting variant's reference policy
        reward/<policy>/<kind>    its reward model
        eval/<variant>/<object set>

    Stages share files in `out` (which, on a cluster, every node must see). With
    `cfg.pipeline` "ray", a stage's episodes run in `cfg.workers` local processes of the node it
    lands on (the stage reserves that many CPUs, and `cfg.train_gpus` GPUs for a training).
    """
    from functools import partial

    from sim.parallel import Executor, Stage, make_executor

    executor = make_executor(cfg.executor, cfg.workers, cfg.ray_address)
    if cfg.pipeline == "ray":
        executor = Executor("local", cfg.workers)
    cpus = float(cfg.workers)
    policies = ["plain"] + [p for p in ("bc", "gravmap") if any(_policy_of(v) == p for v in cfg.variants)]
    stages = [
        Stage(f"train/{p}", partial(_train_stage, cfg, out, p, progress), cpus=cpus, gpus=cfg.train_gpus)
        for p in policies
    ]
    for ref, kind in dict.fromkeys(REWARD_OF[v] for v in cfg.variants if v in REWARD_OF):
        if not any(s.name == f"prefs/{ref}" for s in stages):
            run = partial(_prefs_stage, cfg, out, ref, progress, executor)
            stages.append(Stage(f"prefs/{ref}", run, deps=(f"train/{ref}",), cpus=cpus))
        run = partial(_reward_stage, cfg, out, ref, kind, progress)
        stages.append(Stage(f"reward/{ref}/{kind}", run, deps=(f"prefs/{ref}",), cpus=cpus, gpus=cfg.train_gpus))
    for variant in cfg.variants:
        ref = _policy_of(variant)
        deps = (f"train/{ref}",) + ((f"reward/{'/'.join(REWARD_OF[variant])}",) if variant in REWARD_OF else ())
        for label in OBJECT_SETS:
            run = partial(_eval_stage, cfg, out, variant, label, progress, executor)
            stages.append(Stage(f"eval/{variant}/{label}", run, deps=deps, cpus=cpus))
    return stages


def _say(text: str) -> None:
    print(f"  {text}", flush=True)


def _policy_dir(out: Path, name: str) -> Path:
    return out / f"policy_{name}"


def _train_stage(cfg: AblationConfig, out: Path, name: str, progress: bool) -> str:
    """Train policy `name` (plain, bc, gravmap) unless it is trained already; returns its folder."""
    from policies.common.checkpoint import trained_to
    from policies.config import preset
    from policies.train import train

    run_dir = _policy_dir(out, name)
    steps = cfg.bc_steps if name == "bc" else cfg.steps
    if trained_to(run_dir) >= steps:
        _say(f"{run_dir.name}: trained to {steps} steps already")
        return str(run_dir)
    _say(f"training {run_dir.name} ({steps} steps)")
    extra = {"conditioners": ("gravmap",)} if name == "gravmap" else {}
    extra |= {"policy_type": "bc"} if name == "bc" else {}
    policy, training = preset(cfg.config, goal=cfg.goal, **extra)
    training = dataclasses.replace(training, steps=steps, checkpoint_every=steps, device="auto", seed=cfg.seed)
    resume = trained_to(run_dir) > 0
    train([Path(cfg.data)], run_dir, policy, training, resume=resume, progress=progress, threads=cfg.threads)
    return str(run_dir)


def _prefs_stage(cfg: AblationConfig, out: Path, ref: str, progress: bool, executor) -> str:
    """Collect preferences with policy `ref` unless a finished collection is there."""
    from policies.experiments.evaluate import PolicyRunSpec
    from policies.preference.collect import CollectConfig, collect_preferences
    from policies.runtime.runner import RunnerConfig

    prefs = out / f"prefs_{ref}"
    if (prefs / "DONE").exists():
        return str(prefs)
    _say(f"collecting preferences with {ref}: {cfg.prefs_states} states x {cfg.prefs_candidates} candidates")
    if prefs.exists():
        shutil.rmtree(prefs)  # an interrupted collection: start it again
    spec = PolicyRunSpec(
        str(_policy_dir(out, ref)),
        task=cfg.task,
        split=cfg.split,
        side="train",
        runner=RunnerConfig(action_horizon=cfg.action_horizon),  # the states the evaluated runner visits
        goals=cfg.goals,
        max_steps=cfg.max_steps,
    )
    collect = CollectConfig(
        states=cfg.prefs_states,
        candidates=cfg.prefs_candidates,
        tie_tolerance=cfg.prefs_tie_tolerance,
        temperature=cfg.prefs_temperature,
    )
    collect_preferences(spec, collect, prefs, progress, threads=cfg.threads, executor=executor)
    (prefs / "DONE").write_text("")
    return str(prefs)


def _reward_stage(cfg: AblationConfig, out: Path, ref: str, kind: str, progress: bool) -> dict:
    """Train the `kind` reward of policy `ref` unless it is trained; returns its summary."""
    from policies.common import checkpoint
    from policies.preference.train import RewardTrainConfig, train_reward
    from policies.runtime.policy import Policy

    reward = out / f"reward_{ref}_{kind}"
    summary_file = reward / "summary.json"
    if not summary_file.exists():
        _say(f"training the {kind} reward for {ref}")
        thread_budget.configure("training", threads=cfg.threads, log=_say)
        policy = Policy.load(_policy_dir(out, ref), "cpu")
        summary = train_reward(
            out / f"prefs_{ref}",
            policy,
            reward,
            RewardTrainConfig(model=kind, steps=cfg.reward_steps, seed=cfg.seed),
            progress,
            policy_path=str(checkpoint.resolve(_policy_dir(out, ref))),
        )
        summary_file.write_text(json.dumps(summary, indent=1, default=str))
    return json.loads(summary_file.read_text())


def _eval_stage(cfg: AblationConfig, out: Path, variant: str, label: str, progress: bool, executor) -> dict:
    """Evaluate `variant` on object set `label` unless an evaluation with these settings is there."""
    from policies.experiments.evaluate import PolicyRunSpec, earlier_result, evaluate
    from policies.runtime.runner import RunnerConfig

    ref = _policy_of(variant)
    kind = "oracle" if variant == "oracle" else REWARD_OF[variant][1] if variant in REWARD_OF else "none"
    reward = out / f"reward_{ref}_{kind}" if variant in REWARD_OF else ""
    side, placement = OBJECT_SETS[label]
    folder = out / "eval" / f"{variant}_{label.replace(' ', '_')}"
    spec = PolicyRunSpec(
        str(_policy_dir(out, ref)),
        task=cfg.task,
        split=cfg.split,
        side=side,
        runner=RunnerConfig(
            num_samples=cfg.candidates if kind != "none" else 1,
            action_horizon=cfg.action_horizon,
            temperature=cfg.temperature if kind != "none" else 1.0,
            select=kind,
            reward=str(reward),
        ),
        placement=placement,
        goals=cfg.goals,
        max_steps=cfg.max_steps,
    )
    runner = {
        "candidates": spec.runner.num_samples,
        "action_horizon": spec.runner.action_horizon,
        "select": kind,
        "temperature": spec.runner.temperature,
        "goals": spec.goals,
        "sensor": spec.sensor_name,
    }
    result = earlier_result(folder, _policy_dir(out, ref), cfg.episodes, runner, cfg.max_steps)
    if result is None:
        _say(f"evaluating {variant} on {label} ({cfg.episodes} episodes)")
        result = evaluate(spec, cfg.episodes, out=folder, progress=progress, threads=cfg.threads, executor=executor)
    return result


def ablation_table(results: dict[str, dict[str, dict]], accuracy: dict[str, dict] | None = None) -> str:
    """Markdown: success with 95 % intervals per variant (rows) and object set (columns)."""
    labels = list(OBJECT_SETS)
    lines = ["| variant | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for variant, per in results.items():
        cells = []
        for label in labels:
            o = per.get(label, {}).get("overall")
            cells.append(
                f"{o['successes']}/{o['episodes']} = {o['success_rate']:.0%} ({o['ci95'][0]:.0%}-{o['ci95'][1]:.0%})"
                if o
                else ""
            )
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    if accuracy:
        lines += ["", "| reward | held-out pair accuracy | training accuracy | strict / tied pairs |"]
        lines.append("|---|---|---|---|")
    for name, summary in (accuracy or {}).items():
        acc, data = summary.get("accuracy", {}), summary.get("data", {})
        labels = data.get("labels", {})
        strict = labels.get("first", 0) + labels.get("second", 0)
        held = "n/a (no held-out strict pair)" if acc.get("heldout") is None else f"{acc['heldout']:.0%}"
        held += f" of {data.get('heldout_pairs', 0)}"
        train = "n/a" if acc.get("train") is None else f"{acc['train']:.0%}"
        lines.append(f"| {name} | {held} | {train} | {strict} / {labels.get('tie', 0)} |")
    return "\n".join(lines) + "\n"


def plot_ablation(results: dict[str, dict[str, dict]], png: Path) -> Path:
    """Grouped bars with 95 % interval whiskers: success per variant for each object set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(OBJECT_SETS)
    variants = list(results)
    fig, ax = plt.subplots(figsize=(1.6 * len(variants) + 2, 3.4), dpi=100)
    width = 0.8 / len(labels)
    x = np.arange(len(variants))
    for i, label in enumerate(labels):
        rows = [results[v].get(label, {}).get("overall") for v in variants]
        rate = np.array([r["success_rate"] if r else np.nan for r in rows])
        lo = np.array([r["ci95"][0] if r else np.nan for r in rows])
        hi = np.array([r["ci95"][1] if r else np.nan for r in rows])
        ax.bar(
            x + (i - (len(labels) - 1) / 2) * width, rate, width, yerr=[rate - lo, hi - rate], capsize=3, label=label
        )
    ax.set_xticks(x, variants)
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate (95 % CI)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


STAGE_FIELDS = (
    "data",
    "task",
    "split",
    "goal",
    "config",
    "steps",
    "bc_steps",
    "seed",
    "prefs_states",
    "prefs_candidates",
    "prefs_tie_tolerance",
    "prefs_temperature",
    "action_horizon",
    "reward_steps",
    "goals",
    "max_steps",
)
STAGE_DEFAULTS = {
    "goals": "truth",
    "max_steps": 0,
    "config": "small",
    "bc_steps": 2000,
    "seed": 0,
    "expert_modes": "nearest",
}
"""Stage settings older records lack, and the value they were made with."""


def _check_reusable(cfg: AblationConfig, out: Path) -> None:
    """Record the stage settings in `out`, or refuse when it holds stages made with others."""
    from policies.config import default_state_keys

    wanted = {k: getattr(cfg, k) for k in STAGE_FIELDS}
    wanted["state_keys"] = list(default_state_keys(cfg.goal))  # the policies' state inputs
    # The demonstrations' regime: the expert's modes (`fmb sim collect --expert-modes`).
    from sim.store import EpisodeStore

    wanted["expert_modes"] = EpisodeStore.open(cfg.data).meta.get("expert_modes", "nearest")
    record = out / "ablation_settings.json"
    if record.exists():
        made = json.loads(record.read_text())
        made = STAGE_DEFAULTS | made
        changed = [f"{k} {made.get(k)!r} -> {v!r}" for k, v in wanted.items() if made.get(k) != v]
        if changed:
            raise ParameterError(
                f"{out} holds an ablation made with other settings ({', '.join(changed)}); pass another --out"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(wanted, indent=1))
