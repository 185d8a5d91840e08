"""Chained demonstrations cut into one episode store per skill: each stage of a chain episode (a
`vertical_chain` or `horizontal_chain` expert run, `fmb sim collect --task vertical_chain`)
becomes an episode of its skill, starting where the previous stage left the peg.

    summary = split_stages("runs/chain", "runs/chain_stages")   # runs/chain_stages/<skill>/
    fmb train --data runs/chain_stages/insert --goal tcp_goal ...

A stage episode holds the chain episode's steps whose "stage" is that stage's index; its meta is
the stage's own facts (peg, targets fixed at the stage's start by `sim.tasks.skill_goals`, the
held peg's `stage_start`), `success` = the stage's own check held (the chain moved on, or it was
the last stage and the chain succeeded), its "progress" rescaled to the stage, and "chain" says
where it came from (chain task, stage index, source episode). An insert stage starts near its
hole (FROM_HOLE), where the chain's planned approach hands a learned insert over; a stage whose
first steps were the chain's planned moves ("planned": the retreat before regrasp, the wrist's
long turn before rotate, `sim.experts.chain.ChainController`) starts where they handed over, as
the single-skill task does. Stages a chain never reached are not written. Reruns skip the
chain seeds a skill's store already holds (resumable, atomic per episode as `sim.store` writes
them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError

FROM_HOLE = 0.02
"""[m] An insert stage episode starts at the first step whose TCP is within this of its goal's
axis (horizontally): where the single-skill insert task starts (within 2 cm of the hole) and
where a chain's planned approach hands over (`sim.experts.chain.ChainController`). The steps
before it carry the peg 25-40 cm across the table; policies trained on them learn the transport
and miss the hole."""
TRIMMED = ("insert",)
"""Stages whose episodes start near the hole (FROM_HOLE)."""


def after_planned(data: dict) -> int | None:
    """Index of the first step of `data` whose action was the skill's, not a planned move of the
    chain's ("planned"; 0 when the store has none recorded), None when all were planned."""
    if "planned" not in data:
        return 0
    own = np.flatnonzero(~np.asarray(data["planned"], bool))
    return int(own[0]) if len(own) else None


def near_hole_start(data: dict, goal, within: float) -> int | None:
    """Index of the first step of `data` whose TCP ("obs/tcp_pose") is within `within` [m] of the
    `tcp_goal` `goal` (7,) horizontally, None when none is."""
    tcp = np.asarray(data["obs/tcp_pose"])[:, :2]
    near = np.flatnonzero(np.linalg.norm(tcp - np.asarray(goal, float)[:2], axis=1) <= within)
    return int(near[0]) if len(near) else None


def stage_episodes(data: dict, meta: dict, from_hole: float = FROM_HOLE) -> list[tuple[str, dict, dict]]:
    """[(skill, data, meta)] of the stages of one chain episode (`data` (T, ...) arrays with
    "stage", `meta` its episode meta), in stage order, the stages it reached only; an insert
    stage from its first step within `from_hole` [m] of its goal (0 = all its steps; one that never
    comes that near is left out)."""
    names = meta.get("stage_names")
    if not names or "stage" not in data:
        raise ParameterError(
            f"episode {meta.get('episode_index')} (task {meta.get('task')!r}) is not a chain episode with "
            "recorded stages (collect a chain task: --task vertical_chain or horizontal_chain)"
        )
    stage = np.asarray(data["stage"])
    last = int(meta.get("stage", stage.max()))
    out = []
    for k, skill in enumerate(names):
        mask = stage == k
        if not mask.any():
            continue
        part = {key: np.asarray(v)[mask] for key, v in data.items()}
        planned = after_planned(part)
        if planned is None:
            continue
        part = {key: v[planned:] for key, v in part.items()}
        skipped = 0
        if from_hole > 0 and skill in TRIMMED:
            skipped = near_hole_start(part, meta["stages"][k]["targets"]["tcp_goal"], from_hole)
            if skipped is None:
                continue
            part = {key: v[skipped:] for key, v in part.items()}
        if "progress" in part:  # the chain's (stages done + this one's) / stages -> this stage's
            part["progress"] = np.clip(part["progress"] * len(names) - k, 0.0, 1.0).astype(np.float32)
        success = k < last or (k == len(names) - 1 and bool(meta.get("success")))
        facts = dict(meta["stages"][k])
        facts.update(
            seed=int(meta["seed"]),
            task=skill,
            success=bool(success),
            steps=len(part["stage"]),
            chain={"task": meta["task"], "stage": k, "stages": list(names), "episode_index": meta.get("episode_index")},
        )
        if skill in TRIMMED:
            facts["transport_steps_left_out"] = int(skipped)
        if planned:
            facts["planned_steps_left_out"] = planned
        for key in ("backend", "noise", "dart"):
            if key in meta:
                facts[key] = meta[key]
        out.append((skill, part, facts))
    return out


def split_stages(source: str | Path, out: str | Path, progress: bool = True, from_hole: float = FROM_HOLE) -> dict:
    """Write every stage of the chain episodes in the store at `source` into `out/<skill>/`
    (module docstring; insert stages from `from_hole` [m] of their goal, `stage_episodes`);
    return {skill: {"store", "episodes", "new", "successes"}}. ParameterError when a store there
    was cut with another `from_hole`."""
    from tqdm import tqdm

    from sim.store import EpisodeStore

    src = EpisodeStore.open(source)
    chain = src.meta.get("task", "")
    out = Path(out)
    if out.resolve() == Path(source).resolve():
        raise ParameterError(f"--out {out}: must differ from the chain store it splits")
    stores: dict[str, EpisodeStore] = {}
    done: dict[str, set[int]] = {}
    new: dict[str, int] = {}
    for index in tqdm(src.episode_indices(), desc=f"stages of {chain}", unit="ep", disable=not progress):
        meta = src.load_meta(index)
        if not meta.get("stage_names"):
            raise ParameterError(f"{source}: task {chain!r} is not a chain (its episodes have no stages)")
        if all(meta["seed"] in done.get(skill, ()) for skill in meta["stage_names"]):
            continue
        for skill, data, facts in stage_episodes(src.load(index).data, meta, from_hole):
            if skill not in stores:
                store_meta = {
                    **src.meta,
                    "task": skill,
                    "source": f"stages of {chain} demonstrations ({src.meta.get('source', 'unknown source')})",
                    "chain": chain,
                    **({"from_hole_m": from_hole} if skill in TRIMMED else {}),
                }
                stores[skill] = EpisodeStore.create(out / skill, store_meta)
                made = stores[skill].meta.get("from_hole_m", 0.0 if skill in TRIMMED else None)
                if skill in TRIMMED and made != from_hole:
                    raise ParameterError(
                        f"{out / skill} holds {skill} stages cut {made * 1e3:g} mm from the hole, not "
                        f"{from_hole * 1e3:g} mm; pass another --out"
                    )
                done[skill] = stores[skill].done_seeds()
            if facts["seed"] in done[skill]:
                continue
            stores[skill].append(data, facts)
            done[skill].add(facts["seed"])
            new[skill] = new.get(skill, 0) + 1
    summary = {}
    for skill, store in stores.items():
        successes = sum(store.load_meta(i).get("success") is True for i in store.episode_indices())
        summary[skill] = {
            "store": str(store.root.absolute()),
            "episodes": len(store),
            "new": new.get(skill, 0),
            "successes": successes,
        }
    return summary
