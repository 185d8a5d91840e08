"""Preference labels from people: pictures of each state's candidates and a ranking from the
keyboard (`label_terminal`) or a small local web page (`serve`), stored in the same preference
folder as simulated labels (source "human").

A picture shows, from above (x-y) and from the side (x-z) in the base frame [m], the scene's
point cloud near the TCP and each candidate's open-loop TCP path (current TCP position plus the
running sum of its translation deltas), numbered at its end; dashed lines are the simulated
rollouts when the folder has them. A camera image is shown beside it when the state has one.

A ranking lists candidates best first, separated by spaces or commas; "=" joins equally good
ones: "2 0=3 1". Candidates left out are not compared.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np

from fmb_core.errors import ParameterError
from policies.preference.data import PreferenceSet
from sim.observation import TCP_POSE

PICTURES = "pictures"


def parse_ranking(text: str, k: int) -> list[list[int]]:
    """Groups of candidate numbers, best group first (see module docstring); ParameterError on
    unknown numbers, repeats, or fewer than two candidates."""
    groups = []
    for token in re.split(r"[\s,>]+", text.strip()):
        if not token:
            continue
        try:
            group = [int(x) for x in token.split("=")]
        except ValueError:
            raise ParameterError(f"ranking {text!r}: {token!r} is not a candidate number (0..{k - 1})") from None
        groups.append(group)
    flat = [c for g in groups for c in g]
    bad = [c for c in flat if not 0 <= c < k]
    if bad:
        raise ParameterError(f"ranking {text!r}: candidate {bad[0]} does not exist (0..{k - 1})")
    if len(set(flat)) != len(flat):
        raise ParameterError(f"ranking {text!r}: a candidate is named twice")
    if len(flat) < 2:
        raise ParameterError(f"ranking {text!r}: rank at least two candidates")
    return groups


def pairs_from_ranking(groups: list[list[int]]) -> list[list]:
    """[i, j, label] for every pair of ranked candidates (i < j)."""
    rank = {c: r for r, g in enumerate(groups) for c in g}
    pairs = []
    for i in sorted(rank):
        for j in sorted(rank):
            if i < j:
                pairs.append([i, j, "tie" if rank[i] == rank[j] else ("first" if rank[i] < rank[j] else "second")])
    return pairs


def record_ranking(pset: PreferenceSet, state: int, text: str) -> list[list]:
    """Parse `text` for `state`, store its pairs (source "human"); return the pairs."""
    if not 0 <= state < len(pset):
        raise ParameterError(f"state {state} does not exist (0..{len(pset) - 1})")
    pairs = pairs_from_ranking(parse_ranking(text, pset.states[state]["candidates"]))
    pset.set_pairs(state, pairs, "human")
    return pairs


def render_state(pset: PreferenceSet, state: int, out: Path | None = None) -> Path:
    """Write the picture of `state` (PNG) to `out` (default DIR/pictures/state_NNNNNN.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from policies.preference.select import tcp_paths

    data = pset.load_state(state)
    obs = data["history"][-1]
    cand = data["candidates"]
    first = int(pset.index.get("policy_config", {}).get("obs_horizon", 2)) - 1
    tcp = np.asarray(obs[TCP_POSE], float)[:3]
    paths = tcp_paths(tcp, cand, first)
    image_key = next((k for k in sorted(obs) if k.startswith("rgb/")), None)
    fig, axes = plt.subplots(1, 3 if image_key else 2, figsize=(13 if image_key else 9, 4.4))
    colours = plt.cm.tab10(np.arange(len(cand)) % 10)
    for ax, (a, b, name) in zip(axes, ((0, 1, "top (x-y)"), (0, 2, "side (x-z)"))):
        if "points" in obs:
            pts = np.asarray(obs["points"])
            near = np.all(np.abs(pts[:, :3] - tcp) < 0.1, axis=1)
            ax.scatter(pts[near, a], pts[near, b], c=np.clip(pts[near, 3:6], 0, 1), s=3, linewidths=0)
        for k, path in enumerate(paths):
            ax.plot(path[:, a], path[:, b], "-", color=colours[k], lw=1.6)
            ax.annotate(str(k), path[-1, [a, b]], color=colours[k], fontsize=10, weight="bold")
        if data["paths"] is not None:
            for k, path in enumerate(data["paths"]):
                ax.plot(path[:, a], path[:, b], "--", color=colours[k], lw=0.8, alpha=0.7)
        ax.plot(*tcp[[a, b]], "k+", ms=12)
        every = np.concatenate(
            [paths.reshape(-1, 3)] + ([data["paths"].reshape(-1, 3)] if data["paths"] is not None else [])
        )
        every = every[np.all(np.isfinite(every), axis=1)]
        centre, half = (every.max(0) + every.min(0)) / 2, max(0.03, float(np.ptp(every, 0).max()) / 2 + 0.015)
        ax.set_xlim(centre[a] - half, centre[a] + half)
        ax.set_ylim(centre[b] - half, centre[b] + half)
        ax.set_title(f"{name} [m]")
        ax.set_aspect("equal")
    if image_key:
        axes[2].imshow(obs[image_key])
        axes[2].set_title(image_key)
        axes[2].axis("off")
    fig.suptitle(f"state {state}: {len(cand)} candidates (solid: planned TCP path; dashed: simulated rollout)")
    fig.tight_layout()
    out = Path(out) if out else pset.root / PICTURES / f"state_{state:06d}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def _todo(pset: PreferenceSet, relabel: bool) -> list[int]:
    return [i for i, e in enumerate(pset.states) if relabel or not e["pairs"]]


def label_terminal(
    pset: PreferenceSet, relabel: bool = False, ask: Callable[[str], str] = input, say: Callable = print
) -> int:
    """Ask for a ranking of every (unlabelled, or every with `relabel`) state; returns how many
    were labelled. Answers: a ranking, "s" to skip, "q" to stop."""
    done = 0
    for i in _todo(pset, relabel):
        picture = render_state(pset, i)
        say(f"state {i}: {pset.states[i]['candidates']} candidates, picture {picture}")
        while True:
            try:
                answer = ask("ranking, best first ('2 0=1 3'; s = skip, q = quit): ").strip()
            except EOFError:  # input closed: stop, keeping what was recorded
                answer = "q"
            if answer in ("s", "q"):
                break
            try:
                record_ranking(pset, i, answer)
                done += 1
                break
            except ParameterError as e:
                say(f"  {e}")
        if answer == "q":
            break
    return done


def serve(pset: PreferenceSet, port: int = 8765, relabel: bool = False) -> ThreadingHTTPServer:
    """A local web page (http://127.0.0.1:PORT/) showing the next state to label; returns the
    server (call `serve_forever()`; tests run it in a thread)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, body: bytes, kind: str = "text/html; charset=utf-8"):
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server's name
            m = re.fullmatch(r"/picture/(\d+)\.png", self.path)
            if m and int(m.group(1)) < len(pset):
                with lock:
                    self._send(200, render_state(pset, int(m.group(1))).read_bytes(), "image/png")
                return
            if self.path != "/":
                return self._send(404, b"not found")
            todo = _todo(pset, relabel)
            if not todo:
                return self._send(200, b"<p>every state is labelled.</p>")
            i = todo[0]
            page = (
                f"<h3>state {i} ({len(todo)} left)</h3><img src='/picture/{i}.png'><form method='post' action='/rank'>"
                f"<input type='hidden' name='state' value='{i}'>ranking, best first ('2 0=1 3'): "
                "<input name='ranking' autofocus><input type='submit'></form>"
            )
            self._send(200, page.encode())

        def do_POST(self):  # noqa: N802
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            try:
                with lock:
                    record_ranking(pset, int(form.get("state", ["-1"])[0]), form.get("ranking", [""])[0])
            except (ParameterError, ValueError) as e:
                return self._send(400, f"<p>{html.escape(str(e))}</p><a href='/'>back</a>".encode())
            self.send_response(303)
            self.send_header("Location", "/")
            self.end_headers()

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)
