"""The preference store: candidate action chunks at saved states, and labels over pairs of them.

Layout of a preference folder (schema "fmb-prefs/1"), written by `fmb prefs collect` (labels from
simulated outcomes) and `fmb prefs label` (labels from a person), read by `fmb prefs train`::

    DIR/index.json              schema, task, policy, observation layout, collection settings, states
    DIR/states/state_NNNNNN.npz one state: "history/<obs key>" (To, ...) the observation history
                                (oldest first, goal pose included for goal-conditioned policies),
                                "candidates" (K, Tp, 7) action chunks in environment units,
                                optional "paths" (K, H+1, 3) TCP positions [m] (base frame) of each
                                candidate's rollout, NaN after it ended

Each entry of index.json's "states" list::

    {"file": "states/state_000000.npz", "episode_seed": 200000, "step": 16, "candidates": 8,
     "outcomes": [{"success": false, "progress": 0.61, "failed": false, "unstable": ""}, ...] | null,
     "pairs": [[i, j, label], ...]}

with `label` one of "first" (candidate i preferred), "second" (j preferred), "tie" (equally good)
or "invalid" (not comparable, e.g. a rollout whose physics blew up). A state's "source" says
who labelled it ("sim" or "human"). index.json is rewritten atomically after every state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fmb_core.jsonfile import read_versioned
from policies.preference.exceptions import PreferenceDataError

SCHEMA = "fmb-prefs/1"
INDEX = "index.json"
LABELS = ("first", "second", "tie", "invalid")


class PreferencePair(NamedTuple):
    """One usable preference: in state `state`, candidate `winner` is preferred over `loser`."""

    state: int
    winner: int
    loser: int


class PreferenceSet:
    """A preference folder (see module docstring); `create` or `open` it."""

    def __init__(self, root: Path, index: dict):
        self.root = Path(root)
        self.index = index

    # -- creation and loading --------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, header: dict) -> PreferenceSet:
        """A new, empty preference folder at `root` with `header` (task, policy, observation, ...).

        Raises PreferenceDataError when `root` already holds a preference set."""
        root = Path(root)
        if (root / INDEX).exists():
            raise PreferenceDataError(f"{root}: already holds a preference set ({INDEX}); choose another --out")
        (root / "states").mkdir(parents=True, exist_ok=True)
        pset = cls(root, {"schema": SCHEMA, **header, "states": []})
        pset.save()
        return pset

    @classmethod
    def open(cls, root: str | Path) -> PreferenceSet:
        """Open and validate the folder at `root` (PreferenceDataError naming the file and the fault)."""
        root = Path(root)
        file = root / INDEX
        index = read_versioned(
            file,
            SCHEMA,
            ("task", "states"),
            PreferenceDataError,
            f"; is {root} a preference folder (fmb prefs collect)?",
        )
        pset = cls(root, index)
        for i in range(len(index["states"])):
            pset._check_state(i)
        return pset

    def save(self) -> None:
        """Rewrite index.json atomically."""
        tmp = self.root / f".{INDEX}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(self.index, indent=1))
        os.replace(tmp, self.root / INDEX)

    # -- contents --------------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.index["task"]

    @property
    def states(self) -> list[dict]:
        return self.index["states"]

    def __len__(self) -> int:
        return len(self.states)

    def add_state(
        self,
        history: list[dict],
        candidates: np.ndarray,
        paths: np.ndarray | None = None,
        outcomes: list[dict] | None = None,
        pairs: list | None = None,
        **facts,
    ) -> int:
        """Store one state; returns its number.

        Args:
            history: To observations (dicts of arrays), oldest first.
            candidates: (K, Tp, A) action chunks [env units].
            paths: (K, H+1, 3) rollout TCP positions [m] or None.
            outcomes: K outcome dicts (success, progress, failed, unstable) or None.
            pairs: [i, j, label] triples (see module docstring); [] = not labelled yet.
            facts: JSON-ready extras (episode_seed, step, source).
        """
        candidates = np.asarray(candidates, np.float32)
        if candidates.ndim != 3 or len(candidates) < 2:
            raise PreferenceDataError(f"candidates must be (K >= 2, Tp, A), got shape {candidates.shape}")
        n = len(self.states)
        name = f"states/state_{n:06d}.npz"
        arrays = {f"history/{k}": np.stack([np.asarray(h[k]) for h in history]) for k in history[-1]}
        arrays["candidates"] = candidates
        if paths is not None:
            arrays["paths"] = np.asarray(paths, np.float32)
        np.savez_compressed(self.root / name, **arrays)
        entry = {"file": name, "candidates": len(candidates), "outcomes": outcomes, "pairs": list(pairs or []), **facts}
        self.states.append(entry)
        self._check_state(n)
        self.save()
        return n

    def load_state(self, i: int) -> dict:
        """{"history": [obs dicts, oldest first], "candidates": (K, Tp, A), "paths": (K, H+1, 3) or None}."""
        file = self.root / self.states[i]["file"]
        try:
            with np.load(file) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise PreferenceDataError(f"{file}: cannot be read ({e})") from None
        keys = [k.split("/", 1)[1] for k in arrays if k.startswith("history/")]
        steps = len(arrays[f"history/{keys[0]}"]) if keys else 0
        history = [{k: arrays[f"history/{k}"][t] for k in keys} for t in range(steps)]
        return {"history": history, "candidates": arrays["candidates"], "paths": arrays.get("paths")}

    def set_pairs(self, i: int, pairs: list, source: str) -> None:
        """Replace the labels of state `i` (checked) and save."""
        old = self.states[i].get("pairs"), self.states[i].get("source")
        self.states[i]["pairs"] = [list(p) for p in pairs]
        self.states[i]["source"] = source
        try:
            self._check_state(i)
        except PreferenceDataError:
            self.states[i]["pairs"], self.states[i]["source"] = old
            raise
        self.save()

    def pairs(self, states: list[int] | None = None) -> list[PreferencePair]:
        """Every strict preference (winner, loser) of `states` (default all); ties and invalid pairs
        are left out. PreferenceDataError when a state has no labels at all."""
        out = []
        for i in range(len(self)) if states is None else states:
            entry = self.states[i]
            if not entry["pairs"]:
                raise PreferenceDataError(
                    f"{self.root / INDEX}: state {i} ({entry['file']}) has no labels; "
                    "label it (fmb prefs label) or collect with simulated outcomes"
                )
            for a, b, label in entry["pairs"]:
                if label == "first":
                    out.append(PreferencePair(i, a, b))
                elif label == "second":
                    out.append(PreferencePair(i, b, a))
        return out

    def label_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(LABELS, 0)
        for entry in self.states:
            for *_, label in entry["pairs"]:
                counts[label] += 1
        return counts

    # -- validation ------------------------------------------------------------------------------
    def _check_state(self, i: int) -> None:
        where = f"{self.root / INDEX}: state {i}"
        entry = self.states[i]
        if not isinstance(entry, dict):
            raise PreferenceDataError(f"{where}: expected an object, got {type(entry).__name__}")
        for key in ("file", "candidates", "pairs"):
            if key not in entry:
                raise PreferenceDataError(f"{where}: no {key!r} entry (missing labels are written as [])")
        if not (self.root / entry["file"]).is_file():
            raise PreferenceDataError(f"{where}: its file {entry['file']} is missing")
        k = entry["candidates"]
        seen: dict[tuple[int, int], str] = {}
        for pair in entry["pairs"]:
            if not (isinstance(pair, list | tuple) and len(pair) == 3):
                raise PreferenceDataError(f"{where}: pair {pair!r} is not [i, j, label]")
            a, b, label = pair
            if label not in LABELS:
                raise PreferenceDataError(f"{where}: pair {pair!r} has label {label!r}; known: {', '.join(LABELS)}")
            if not (isinstance(a, int) and isinstance(b, int) and 0 <= a < k and 0 <= b < k and a != b):
                raise PreferenceDataError(f"{where}: pair {pair!r} must name two different candidates in 0..{k - 1}")
            key, canon = (a, b), label
            if a > b:  # the same pair written the other way round
                key, canon = (b, a), {"first": "second", "second": "first"}.get(label, label)
            if key in seen and seen[key] != canon:
                raise PreferenceDataError(
                    f"{where}: contradictory labels for candidates {key[0]} and {key[1]}: {seen[key]!r} and {canon!r}"
                )
            seen[key] = canon
        if entry.get("outcomes") is not None and len(entry["outcomes"]) != k:
            raise PreferenceDataError(f"{where}: {len(entry['outcomes'])} outcomes for {k} candidates")
