"""GravMap as a policy conditioner (`policies.common.conditioning`; registry name "gravmap").

Training inputs are the next keypose of each demonstration (`policies.gravmap.keyposes`) relative
to each step's TCP, with its gripper openness; at run time the runner tracks the task's sub-goals
(`policies.gravmap.subgoals`) and puts the current one in the observation (SUBGOAL). The token is
`GravMapEncoder`'s (the cost and gripper maps on a TCP-centred grid through a 3-D CNN), and it
conditions only the position and gripper channels (`action_channels`), through the denoiser's
second U-Net (`policies.diffusion.model`). Its settings are the config's `gravmap_*` fields.
"""

from __future__ import annotations

import numpy as np

from fmb_core.errors import ParameterError
from policies.common.conditioning import Conditioner
from policies.gravmap.maps import GravMapSpec
from sim.observation import GRIPPER, TCP_POSE, TCP_VEL, WRENCH, store_key

SUBGOAL = "subgoal"
"""Observation (and batch) key of the current GravMap sub-goal (4,): TCP position [m] (base frame) +
gripper openness in [0, 1] in observations; relative to the TCP in batches (`subgoal_features`)."""


def subgoal_features(subgoal: np.ndarray, tcp_pose: np.ndarray) -> np.ndarray:
    """(..., 4) float32: sub-goal position minus TCP position [m] (base-frame axes) and the
    sub-goal's openness, from sub-goals (..., 4) and TCP poses (..., 7) (the GravMap input)."""
    g, t = np.broadcast_arrays(np.asarray(subgoal, np.float64), np.asarray(tcp_pose, np.float64)[..., :4])
    return np.concatenate([g[..., :3] - t[..., :3], g[..., 3:4]], axis=-1).astype(np.float32)


def spec_of(config) -> GravMapSpec:
    """The GravMapSpec of a policy config's `gravmap_*` fields (checks them)."""
    return GravMapSpec(config.gravmap_grid, config.gravmap_extent, config.gravmap_rho, config.gravmap_sigma)


class GravMapConditioner(Conditioner):
    """See module docstring."""

    name = "gravmap"
    batch_key = SUBGOAL
    data_keys = (store_key(TCP_POSE),)
    needs_subgoals = True
    action_channels = (0, 1, 2, 6)  # position delta xyz and the gripper, never the rotation

    def __init__(self, config):
        super().__init__(config)
        self.spec = spec_of(config)

    def episode_inputs(self, store, index: int, data: dict) -> np.ndarray:
        """(T, 4): the next keypose relative to each step's TCP, and its openness; keyposes from
        the TCP path, and velocity, wrench and opening where the data has them."""
        from policies.gravmap.keyposes import discover_keyposes, episode_subgoals

        with np.load(store.root / "episodes" / f"episode_{index:06d}.npz") as z:
            names = set(z.files)
        cues = [store_key(k) for k in (TCP_VEL, WRENCH, GRIPPER)]
        wanted = [k for k in cues if k in names and k not in data]
        extra = store.load(index, wanted).data if wanted else {}
        data = {**data, **extra}
        tcp = np.asarray(data[store_key(TCP_POSE)], np.float64)
        action = np.asarray(data["action"]) if np.shape(data["action"])[-1] == 7 else None
        keyposes = discover_keyposes(tcp, action, *(data.get(k) for k in cues))
        return subgoal_features(episode_subgoals(keyposes, len(tcp)), tcp)

    def observation_inputs(self, obs: dict) -> np.ndarray:
        if SUBGOAL not in obs:
            raise ParameterError(f"the policy is GravMap-conditioned but the observation has no {SUBGOAL!r}")
        return subgoal_features(obs[SUBGOAL], obs[TCP_POSE])

    def encoder(self, feature_dim: int):
        from policies.gravmap.encoder import GravMapEncoder

        return GravMapEncoder(self.spec, feature_dim)
