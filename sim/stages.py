"""Chained demonstrations cut into one episode store per skill: each stage of a chain episode (a
`vertical_chain` or `horizontal_chain` expert run, `fmb sim collect --task vertical_chain`)
becomes an episode of its skill, starting where the previous stage left the peg.

    summary = split_stages("runs/chain", "runs/chain_stages")   # runs/chain_stages/<skill>/
    fmb train --data runs/chain_stages/insert --goal tcp_goal ...

A stage episode holds the chain episode's steps whose "stage" is that stage's index; its meta is
the stage's own facts (peg, targets fixed at the stage's start by `sim.tasks.skill_goals`, the
held peg's `stage_start`), `success` = the stage's own check held (the chain moved on, or it was
the last stage and the chain succeeded), its "progress" rescaled to the stage, and "chain" says
where it came from (chain task, stage index, source episode). Stages a chain never reached are
not written. Reruns skip the chain seeds a skill's store already holds (resumable, atomic per
episode as `sim.store` writes them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError


def stage_episodes(data: dict, meta: dict) -> list[tuple[str, dict, dict]]:
    """[(skill, data, meta)] of the stages of one chain episode (`data` (T, ...) arrays with
    "stage", `meta` its episode meta), in stage order, the stages it reached only."""
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
        if "progress" in part:  # the chain's (stages done + this one's) / stages -> this stage's
            part["progress"] = np.clip(part["progress"] * len(names) - k, 0.0, 1.0).astype(np.float32)
        success = k < last or (k == len(names) - 1 and bool(meta.get("success")))
        facts = dict(meta["stages"][k])
        facts.update(
            seed=int(meta["seed"]),
            task=skill,
            success=bool(success),
            steps=int(mask.sum()),
            chain={"task": meta["task"], "stage": k, "stages": list(names), "episode_index": meta.get("episode_index")},
        )
        for key in ("backend", "noise", "dart"):
            if key in meta:
                facts[key] = meta[key]
        out.append((skill, part, facts))
    return out


def split_stages(source: str | Path, out: str | Path, progress: bool = True) -> dict:
    """Write every stage of the chain episodes in the store at `source` into `out/<skill>/`
    (module docstring); return {skill: {"store", "episodes", "new", "successes"}}."""
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
        for skill, data, facts in stage_episodes(src.load(index).data, meta):
            if skill not in stores:
                store_meta = {
                    **src.meta,
                    "task": skill,
                    "source": f"stages of {chain} demonstrations ({src.meta.get('source', 'unknown source')})",
                    "chain": chain,
                }
                stores[skill] = EpisodeStore.create(out / skill, store_meta)
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
