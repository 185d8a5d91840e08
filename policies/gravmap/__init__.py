"""GravMap guidance (after GravMAD): sub-goal keyposes from demonstrations, voxel cost and
gripper maps of a sub-goal, the map token that conditions position denoising, run-time sub-goals
from the scene, and cost guidance during sampling.

    from policies.gravmap import discover_keyposes, build_gravmap
    keyposes = discover_keyposes(ep["obs/tcp_pose"], ep["action"], ep["obs/tcp_vel"], ep["obs/wrench"])
    gmap = build_gravmap(keyposes[0].position, keyposes[0].openness, centre=tcp[:3])

Train with `fmb train --gravmap` (the "gravmap" conditioner: `conditioner`, registered in
`policies.conditioners`); evaluate with `fmb eval` (the runner
builds sub-goals from the task and object poses) and `--guidance SCALE`. Exports load lazily;
keyposes, maps and subgoals need no torch.
"""

from importlib import import_module

_EXPORTS = {
    "KeyposeConfig": "policies.gravmap.keyposes",
    "Keypose": "policies.gravmap.keyposes",
    "discover_keyposes": "policies.gravmap.keyposes",
    "episode_subgoals": "policies.gravmap.keyposes",
    "GravMapSpec": "policies.gravmap.maps",
    "GravMap": "policies.gravmap.maps",
    "build_gravmap": "policies.gravmap.maps",
    "Subgoal": "policies.gravmap.subgoals",
    "SubgoalTracker": "policies.gravmap.subgoals",
    "SUBGOAL_SOURCES": "policies.gravmap.subgoals",
    "privileged_subgoals": "policies.gravmap.subgoals",
    "SubgoalGuidance": "policies.gravmap.guidance",
    "GravMapEncoder": "policies.gravmap.encoder",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policies.gravmap' has no attribute {name!r}")
