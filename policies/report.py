"""The quickstart report: Markdown with PNG plots (success per shape, loss curves, a video still)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pct(summary: dict) -> str:
    lo, hi = summary["ci95"]
    return f"{summary['success_rate']:.0%} ({summary['successes']}/{summary['episodes']}; 95% CI {lo:.0%}-{hi:.0%})"


def plot_success(results: dict[str, dict[str, dict]], png: Path) -> Path:
    """Grouped bars: success per shape family for every (policy, objects) evaluation.

    `results[policy][objects]` is an evaluation result (see policies.evaluate)."""
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
    for label, png in images.items():
        if png is not None:
            lines += [f"## {label}", "", f"![{label}]({Path(png).relative_to(out)})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _families(results) -> list[str]:
    return sorted({f for per in results.values() for r in per.values() for f in r["per_family"]})
