"""Pictures of GravMaps: the cost map of a demonstration's sub-goal over the scene point cloud.

    fmb gravmap show --episode runs/demos/3 --out gravmap.png
    fmb gravmap show --data runs/demos --episode 3 --step 0 --out gravmap.png

Three panels: a 3-D view (cloud in its colours, low-cost voxels coloured by cost, the TCP path,
keyposes, the sub-goal as a star) and top (x-y) and side (x-z) projections of the minimum cost
along the hidden axis with the cloud over them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmb_core.errors import ParameterError
from policies.gravmap.keyposes import discover_keyposes, next_keypose_index
from policies.gravmap.maps import GravMapSpec, build_gravmap


def parse_episode(episode: str, data: str | Path | None = None) -> tuple[Path, int]:
    """(store root, episode index) from `--episode STORE/INDEX` (or a path to its npz file), or
    `--data STORE --episode INDEX`."""
    if data is not None:
        try:
            return Path(data), int(episode)
        except ValueError:
            raise ParameterError(f"--episode {episode!r}: expected an episode index with --data") from None
    path = Path(episode)
    if path.suffix == ".npz":
        try:
            return path.parent.parent, int(path.stem.split("_")[-1])
        except ValueError:
            raise ParameterError(f"--episode {episode}: not an episode_NNNNNN.npz file") from None
    try:
        return path.parent, int(path.name)
    except ValueError:
        raise ParameterError(f"--episode {episode!r}: expected STORE/INDEX, e.g. runs/demos/3") from None


def show_gravmap(
    store_root: str | Path,
    index: int,
    out: str | Path,
    step: int = 0,
    spec: GravMapSpec | None = None,
) -> dict:
    """Write the picture of the GravMap that a window at `step` of episode `index` trains with
    (its next keypose) to `out` (PNG); return what was drawn (sub-goal, keyposes, map stats)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.store import EpisodeStore

    store = EpisodeStore.open(store_root)
    if index not in store.episode_indices():
        raise ParameterError(f"--episode {index}: {store.root} holds episodes {store.episode_indices()[:10]}...")
    with np.load(store.root / "episodes" / f"episode_{index:06d}.npz") as z:
        names = set(z.files)
    keys = [
        k for k in ("obs/tcp_pose", "action", "obs/tcp_vel", "obs/wrench", "obs/gripper", "obs/points") if k in names
    ]
    if "obs/tcp_pose" not in keys:
        raise ParameterError(f"{store.root} episode {index}: no obs/tcp_pose, so no keyposes")
    d = store.load(index, keys).data
    tcp = np.asarray(d["obs/tcp_pose"], float)
    if not 0 <= step < len(tcp):
        raise ParameterError(f"--step {step}: the episode has steps 0..{len(tcp) - 1}")
    kps = discover_keyposes(tcp, d.get("action"), d.get("obs/tcp_vel"), d.get("obs/wrench"), d.get("obs/gripper"))
    goal = kps[int(next_keypose_index(kps, len(tcp))[step])]
    cloud = np.asarray(d["obs/points"][step], float) if "obs/points" in d else np.zeros((0, 6))
    scene = np.concatenate([cloud[:, :3], tcp[:, :3]])
    low, high = scene.min(0) - 0.03, scene.max(0) + 0.03
    centre = (low + high) / 2
    spec = spec or GravMapSpec(grid=24, extent=float((high - low).max() / 2), rho=0.05, sigma=0.03)
    gmap = build_gravmap(goal.position, goal.openness, centre, spec)

    fig = plt.figure(figsize=(15, 5), dpi=100)
    ax = fig.add_subplot(1, 3, 1, projection="3d")
    if len(cloud):
        ax.scatter(*cloud[:, :3].T, c=np.clip(cloud[:, 3:6], 0, 1), s=1, alpha=0.5)
    pts, cost = gmap.points.reshape(-1, 3), gmap.cost.reshape(-1)
    near = cost < np.quantile(cost, 0.15)
    sc = ax.scatter(*pts[near].T, c=cost[near], cmap="viridis_r", s=6, alpha=0.35, vmin=0, vmax=1)
    _path(ax, tcp, kps, goal, three_d=True)
    ax.set_title(f"next keypose: step {goal.step} ({goal.cue})")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_zlabel("z [m]")
    fig.colorbar(sc, ax=ax, shrink=0.6, pad=0.12, label="cost d/(d+rho)")
    axes = (0, 1), (0, 2)
    for i, (a, b) in enumerate(axes):
        ax2 = fig.add_subplot(1, 3, 2 + i)
        hidden = ({0, 1, 2} - {a, b}).pop()
        proj = gmap.cost.min(axis=hidden)
        extent = [pts[:, a].min(), pts[:, a].max(), pts[:, b].min(), pts[:, b].max()]
        ax2.imshow(proj.T, origin="lower", extent=extent, cmap="viridis_r", vmin=0, vmax=1, alpha=0.8)
        if len(cloud):
            ax2.scatter(cloud[:, a], cloud[:, b], c=np.clip(cloud[:, 3:6], 0, 1), s=1, alpha=0.6)
        _path(ax2, tcp[:, [a, b]], kps, goal, axes=(a, b))
        ax2.set_xlabel("xyz"[a] + " [m]")
        ax2.set_ylabel("xyz"[b] + " [m]")
        ax2.set_title(("top (x-y)", "side (x-z)")[i] + ", min cost along " + "xyz"[hidden])
    fig.suptitle(
        f"{store.root.name} episode {index} ({store.meta.get('task', '?')}), window at step {step}: "
        f"sub-goal {np.round(goal.position, 3).tolist()} m, gripper {'open' if goal.openness > 0.5 else 'closed'}"
    )
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return {
        "png": str(out),
        "subgoal": goal.position.tolist(),
        "openness": goal.openness,
        "keyposes": [{"step": k.step, "cue": k.cue, "position": k.position.tolist()} for k in kps],
        "cost_at_subgoal_voxel": float(cost.min()),
        "points": len(cloud),
    }


def _path(ax, tcp, kps, goal, three_d=False, axes=(0, 1, 2)):
    """TCP path, keyposes (dots) and the sub-goal (star) on `ax`."""
    if three_d:
        ax.plot(*tcp[:, :3].T, color="k", lw=1)
        for k in kps:
            ax.scatter(*k.position, color="tab:orange", s=25)
        ax.scatter(*goal.position, color="red", marker="*", s=250)
        return
    ax.plot(tcp[:, 0], tcp[:, 1], color="k", lw=1, label="TCP path")
    for k in kps:
        ax.scatter(k.position[axes[0]], k.position[axes[1]], color="tab:orange", s=25)
    ax.scatter(goal.position[axes[0]], goal.position[axes[1]], color="red", marker="*", s=250, label="sub-goal")
    ax.legend(loc="upper right", fontsize=7)
