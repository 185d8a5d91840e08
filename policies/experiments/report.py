"""The quickstart report: Markdown with PNG plots (success per shape, success by the perceived
goal's error, loss curves, a video still), for chains each stage's success, and for evaluations
with perceived goals, what perception and the safety filter did."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pct(summary: dict) -> str:
    lo, hi = summary["ci95"]
    return f"{summary['success_rate']:.0%} ({summary['successes']}/{summary['episodes']}; 95% CI {lo:.0%}-{hi:.0%})"


def plot_success(results: dict[str, dict[str, dict]], png: Path) -> Path:
    """Grouped bars: success per shape family for every (policy, objects) evaluation.

    `results[policy][objects]` is an evaluation result (see policies.experiments.evaluate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted({f for per in results.values() for r in per.values() for f in r["per_family"]})
    series = [(f"{p} / {o}", r) for p, per in results.items() for o, r in per.items()]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(families) + 2), 3.4), dpi=100)
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(families))
    for i, (label, r) in enumerate(series):
        rates = [r["per_family"].get(f, {}).get("success_rate", np.nan) for f in families]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, rates, width, label=label)
    ax.set_xticks(x, families, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate")
    ax.legend(fontsize=8, ncols=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


GOAL_ERROR_OBJECTS = ("hole", "peg")
"""The perceived object whose error a goal inherits, first one an episode reports: the target hole
(insertion's `tcp_goal`, `hole`) or the peg (`grasp`)."""
ERROR_BINS_MM = (0.0, 1.0, 1.5, 2.0, 3.0, np.inf)
"""Edges [mm] of the goal-error bins of `success_by_goal_error`."""


def _goal_error(episode: dict) -> float | None:
    perception = episode.get("perception") or {}
    for key in GOAL_ERROR_OBJECTS:
        if perception.get(key):
            return perception[key]["translation_mm"]
    return None


def success_by_goal_error(result: dict) -> list[tuple[str, int, int]]:
    """[(bin label, successes, episodes)] of a perceived-goal evaluation's episodes, binned by the
    translation error [mm] of the object their goal came from (GOAL_ERROR_OBJECTS); empty bins
    left out, [] when no episode reports one (truth goals)."""
    errors = [(_goal_error(e), e["success"]) for e in result.get("episodes", [])]
    errors = [(mm, ok) for mm, ok in errors if mm is not None]
    rows = []
    for lo, hi in zip(ERROR_BINS_MM[:-1], ERROR_BINS_MM[1:]):
        inside = [ok for mm, ok in errors if lo <= mm < hi]
        if inside:
            label = f">= {lo:g}" if np.isinf(hi) else f"{lo:g}-{hi:g}"
            rows.append((label, int(sum(inside)), len(inside)))
    return rows


def plot_success_by_goal_error(results: dict[str, dict[str, dict]], png: Path) -> Path | None:
    """Success rate against the perceived goal's error (`success_by_goal_error`), one line per
    perceived evaluation, each point labelled with its episode count; None when none has one."""
    series = [(f"{p} / {o}", success_by_goal_error(r)) for p, per in results.items() for o, r in per.items()]
    series = [(label, rows) for label, rows in series if rows]
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">= {lo:g}" for lo, hi in zip(ERROR_BINS_MM[:-1], ERROR_BINS_MM[1:])
    ]
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    for label, rows in series:
        x = [labels.index(b) for b, _, _ in rows]
        ax.plot(x, [k / n for _, k, n in rows], marker="o", lw=1.2, label=label)
        for xi, (_, k, n) in zip(x, rows):
            ax.annotate(f"{n}", (xi, k / n), textcoords="offset points", xytext=(0, 5), fontsize=7, ha="center")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("perceived goal object's position error [mm] (hole or peg)")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1.08)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def _median_error(errors: dict | None) -> str:
    if not errors:
        return ""
    t, r = errors["translation_mm"], errors["rotation_deg"]
    return f"{t['median']:.2f} mm / {r['median']:.2f} deg (max {t['max']:.1f} mm / {r['max']:.1f} deg)"


def hand_eye_state(goals: dict) -> str:
    """ "on", "off" or "" (an evaluation from before the refinement existed) of a perceived
    evaluation's `goals` summary."""
    he = goals.get("hand_eye")
    if not isinstance(he, dict):
        return ""
    if "enabled" in he:
        return "on" if he["enabled"] else "off"
    return "on" if he.get("views") else "off"  # written before the summary said so


def _hand_eye_cell(goals: dict) -> str:
    he, state = goals.get("hand_eye") or {}, hand_eye_state(goals)
    if state != "on" or "error_before_mm" not in he:
        return state
    before, after = he["error_before_mm"]["median"], he["error_after_mm"]["median"]
    return f"{he['applied']}/{he['views']} refined, {before:.2f} -> {after:.2f} mm"


def perception_lines(results: dict[str, dict[str, dict]]) -> list[str]:
    """Markdown table of what perception and the safety filter did in each perceived evaluation
    (median and max errors against the simulator's poses; [] when none was perceived)."""
    rows = []
    keys = ("board", "hole", "peg", "in_hand", "in_hand_commanded")
    for policy, per in results.items():
        for objects, r in per.items():
            goals = r.get("goals", {})
            if goals.get("source") != "perceived":
                continue
            errors = goals.get("perception_errors", {})
            cells = [_hand_eye_cell(goals)] + [_median_error(errors.get(k)) for k in keys]
            rejected = goals.get("episodes_with_rejected_commands", 0)
            rows.append(
                f"| {policy} | {objects} | "
                + " | ".join(cells)
                + f" | {goals.get('perception_failures', 0)} | {rejected} |"
            )
    if not rows:
        return []
    return [
        "## Perception and safety filter (perceived goals)",
        "",
        "Median error against the simulator's poses (max in brackets); cameras: the hand-eye refinement"
        " (`fmb eval --hand-eye`: views refined, and the cameras' median error at the table centre before"
        " and after it); in-hand: the peg estimated in the hand, and the commanded grasp the goal used"
        " (`fmb eval --in-hand`); failures: episodes ended because an object was not found; rejected:"
        " episodes in which the safety filter rejected a command.",
        "",
        "| policy | objects | cameras | board | hole | peg | in hand (estimated) | in hand (commanded) | failures"
        " | rejected |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def plot_losses(logs: dict[str, Path], png: Path) -> Path:
    """Training loss curves of several runs (train_log.csv files) in one plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from policies.train import read_log

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for label, log in logs.items():
        steps, losses = read_log(log)
        ax.plot(steps, losses, lw=1.2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def video_still(mp4: Path, png: Path) -> Path | None:
    """The middle frame of `mp4` as a PNG (None when the video cannot be read)."""
    import av
    import matplotlib.image

    try:
        with av.open(str(mp4)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (OSError, av.error.FFmpegError):
        return None
    if not frames:
        return None
    matplotlib.image.imsave(png, frames[len(frames) // 2])
    return png


def write_report(out: Path, facts: dict, results: dict[str, dict[str, dict]], images: dict[str, Path]) -> Path:
    """Write out/report.md; `facts` are (label, value) lines about the run, `images` label -> PNG."""
    lines = ["# FMB quickstart report", ""]
    for key, value in facts.items():
        lines.append(f"- **{key}**: {value}")
    lines += ["", "## Success rates", "", "| policy | objects | success | mean steps |", "|---|---|---|---|"]
    for policy, per in results.items():
        for objects, r in per.items():
            lines.append(f"| {policy} | {objects} | {_pct(r['overall'])} | {r['overall']['mean_steps']:.1f} |")
    lines += ["", "### Per shape family", "", "| policy | objects | " + " | ".join(_families(results)) + " |"]
    lines.append("|---|---|" + "---|" * len(_families(results)))
    for policy, per in results.items():
        for objects, r in per.items():
            cells = []
            for f in _families(results):
                s = r["per_family"].get(f)
                cells.append(f"{s['successes']}/{s['episodes']}" if s else "")
            lines.append(f"| {policy} | {objects} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += stage_lines(results)
    lines += perception_lines(results)
    for label, png in images.items():
        if png is not None:
            lines += [f"## {label}", "", f"![{label}]({Path(png).relative_to(out)})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def stage_lines(results: dict[str, dict[str, dict]]) -> list[str]:
    """For chain evaluations: each stage's success among the episodes that reached it and the
    failed episodes per stage they stopped in (`sim.collect.stage_summary`); [] otherwise."""
    chains = [(p, o, r) for p, per in results.items() for o, r in per.items() if r.get("per_stage")]
    if not chains:
        return []
    stages = list(chains[0][2]["per_stage"])
    lines = [
        "### Per stage",
        "",
        "Each stage's success among the episodes that reached it; in brackets, the failed episodes that stopped there.",
        "",
        "| policy | objects | " + " | ".join(stages) + " |",
        "|---|---|" + "---|" * len(stages),
    ]
    for policy, objects, r in chains:
        cells = []
        for stage in stages:
            s = r["per_stage"].get(stage, {})
            done = f"{s['successes']}/{s['episodes']}" if s.get("episodes") else "not reached"
            cells.append(f"{done} ({r['failed_at'].get(stage, 0)})")
        lines.append(f"| {policy} | {objects} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _families(results) -> list[str]:
    return sorted({f for per in results.values() for r in per.values() for f in r["per_family"]})


def read_result(file: Path) -> dict:
    """An evaluation result (`fmb eval --json`, a quickstart's eval/*/result.json); ParameterError
    naming the file when it is missing, not JSON, or holds no evaluation (no "overall" and "episodes")."""
    import json

    from fmb_core.errors import ParameterError

    file = Path(file)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ParameterError(f"{file}: missing") from None
    except (IsADirectoryError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ParameterError(f"{file}: not an evaluation result JSON ({e})") from None
    if not isinstance(data, dict) or "overall" not in data or "episodes" not in data:
        raise ParameterError(
            f"{file}: not an evaluation result (no 'overall' and 'episodes'; made by fmb eval --json?)"
        )
    return data


def results_table(named: dict[str, dict]) -> list[str]:
    """Markdown table, one row per evaluation result (label -> result): objects, goal source and
    sensor, success with its 95 % interval, mean steps, the perceived goal object's median error,
    perception failures and episodes with rejected commands (empty cells for truth goals); with
    chain results, each stage's successes among the episodes that reached it."""
    chains = any(r.get("per_stage") for r in named.values())
    lines = [
        "| result | objects | goals | sensor | success | mean steps | goal error (median) | failures | rejected |"
        + (" per stage |" if chains else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if chains else ""),
    ]
    for label, r in named.items():
        split = r.get("split", {})
        objects = f"{split.get('name', '?')} {split.get('side', '?')}"
        if r.get("placement", "train") != "train":
            objects += f", placement {r['placement']}"
        runner, goals = r.get("runner", {}), r.get("goals", {})
        errors = [e for e in (_goal_error(ep) for ep in r["episodes"]) if e is not None]
        perceived = goals.get("source") == "perceived"
        cells = [
            label,
            objects,
            runner.get("goals", "truth") + (", hand-eye off" if hand_eye_state(goals) == "off" else ""),
            runner.get("sensor", "exact"),
            _pct(r["overall"]),
            f"{r['overall']['mean_steps']:.1f}",
            f"{np.median(errors):.2f} mm" if errors else "",
            str(goals.get("perception_failures", 0)) if perceived else "",
            str(goals.get("episodes_with_rejected_commands", 0)) if perceived else "",
        ]
        if chains:
            per_stage = r.get("per_stage", {})
            cells.append(
                ", ".join(f"{k} {v['successes']}/{v['episodes']}" for k, v in per_stage.items() if v["episodes"])
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines
