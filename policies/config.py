"""Policy and training configuration: typed dataclasses with presets and checks.

Timeline of one decision (Diffusion Policy's convention), o = observation, a = action::

    t:        t-1   t    t+1  ...  t+6  ...  t+14
    obs:      o     o                                   obs_horizon = 2
    predict:  a     a    a    ...  a    ...  a          pred_horizon = 16 (starts at t-1)
    execute:        a    a    ...  a                    action_horizon = 8 (from index obs_horizon-1)

Presets (`PRESETS`): `small` is sized for a 2-core CPU (one decision with 10 DDIM steps in a few
tens of milliseconds), `base` and `large` for a GPU; `tiny` only checks that a pipeline's stages
connect (smoke runs and tests: it trains in seconds and learns little).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fmb_core.errors import ParameterError, check_choice, check_range
from policies.conditioners import conditioners_of
from sim import observation

POLICY_TYPES = ("diffusion", "bc")
SCHEDULERS = ("ddim", "dpm", "ddpm")
PREDICTIONS = ("epsilon", "sample")
STATE_KEYS = (*(e.key for e in observation.PROPRIOCEPTION), observation.STATE, "goal")
"""Observation keys the state encoder understands ("state" = a flat vector from foreign data;
"goal" = the skill's target pose relative to the TCP, see `goal`)."""
GOAL_STATE_KEYS = (observation.GRIPPER,)
"""The state of a goal-conditioned policy unless chosen otherwise (`preset`): the gripper width,
beside the goal's pose relative to the TCP. The TCP's own pose, velocity and wrench are left out:
with them, a diffusion policy trained on 100 insertion demonstrations learned to move only 0.2-0.3
mm per mm of lateral goal error (the expert: about 1; `fmb bench goal-response`) and jammed pegs
at the hole's mouth in 12-62 % of episodes depending on the training seed; without them it follows
its goal as BC does (0.9). See the README's policy figures."""
SKILL_GOAL = "skill"
"""`PolicyConfig.goal` for a policy of several skills: each skill conditions on its own target
(`sim.tasks.skill_goals.SKILL_GOALS`: grasp -> "grasp", insert -> "tcp_goal", ...)."""


def goal_key(config: PolicyConfig, skill: str) -> str:
    """The task target a policy with `config` conditions on when it runs `skill` ("" for none):
    `config.goal`, or the skill's own goal when that is SKILL_GOAL."""
    if config.goal != SKILL_GOAL:
        return config.goal
    from sim.tasks.skill_goals import SKILL_GOALS

    if skill not in SKILL_GOALS:
        raise ParameterError(f"goal {SKILL_GOAL!r}: {skill!r} has no skill goal (known: {', '.join(SKILL_GOALS)})")
    return SKILL_GOALS[skill]


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Everything that shapes a policy network; saved with every checkpoint.

    Args:
        policy_type: "diffusion" (1D U-Net denoiser) or "bc" (MLP regressor of the same chunk).
        obs_horizon, pred_horizon, action_horizon: see the module timeline [steps].
        state_keys: observation keys concatenated into the state vector (tcp_pose becomes
            position + 6-D rotation so that the quaternion's sign does not matter).
        points: points of the local cloud fed to the point encoder (0 = no point encoder).
        crop_low, crop_high: box around the TCP position (base-frame axes) [m] that the local
            cloud is cut from.
        image_key: camera whose RGB image goes to the image encoder ("" = none), e.g. "rgb/wrist".
        image_size: side the image is resized to [px].
        goal: name of the task target the skill is conditioned on ("" = none), e.g. "hole" for
            insert: its pose relative to the TCP joins the state (position offset [m] in base
            axes + 6-D relative rotation). It is the skill's command, as a ROS goal gives it: in
            simulation read from the task specification (ground truth, an upper bound), on a robot
            from perception. SKILL_GOAL ("skill"): each skill its own (`goal_key`), for a policy
            of several skills.
        skills: skill names for the one-hot skill input (one-hot only when more than one).
        families: shape families for the one-hot object input (empty = no object input).
        state_hidden: width of the state MLP.
        point_channels: widths of the shared point MLP (PointNet, max-pooled).
        feature_dim: output width of each encoder.
        down_dims: U-Net channel widths per level (the horizon halves at each level).
        kernel_size, n_groups: U-Net convolution kernel and GroupNorm groups.
        step_embed_dim: width of the diffusion-step embedding.
        train_timesteps: DDPM steps in training; beta_schedule: diffusers beta schedule name.
        inference_steps: denoising steps when sampling; scheduler: ddim, dpm (DPM-Solver++) or ddpm.
        prediction: what the denoiser predicts: "sample" (the clean chunk) or "epsilon" (the
            noise, Diffusion Policy's choice). At this CPU's training budgets "sample" is far more
            precise: trained 2000 steps on one insertion demonstration (the overfit test in
            tests/policies/test_end_to_end.py), it reproduces it on every sampling seed tried,
            where "epsilon" jammed the peg on one seed of two.
        bc_hidden: hidden widths of the BC regressor.
        conditioners: names of the conditioners the policy is conditioned on beyond its
            observations (`policies.conditioners.CONDITIONERS`), e.g. ("gravmap",): the
            position (xyz) and gripper channels of the denoiser conditioned on a GravMap token of
            the next sub-goal (`policies.gravmap.conditioner`; training takes sub-goals from
            keyposes of the demonstrations, acting from the scene). () = the plain policy.
        gravmap_grid, gravmap_extent: the "gravmap" conditioner's voxels per side and half-side [m]
            of the TCP-centred grid; gravmap_rho: distance at which the cost map is 1/2 [m];
            gravmap_sigma: width of the gripper map [m] (formulas in policies.gravmap.maps).
    """

    policy_type: str = "diffusion"
    # inputs
    obs_horizon: int = 2
    pred_horizon: int = 16
    action_horizon: int = 8
    state_keys: tuple[str, ...] = (observation.TCP_POSE, observation.TCP_VEL, observation.WRENCH, observation.GRIPPER)
    points: int = 256
    crop_low: tuple[float, float, float] = (-0.06, -0.06, -0.26)
    crop_high: tuple[float, float, float] = (0.06, 0.06, 0.0)
    image_key: str = ""
    image_size: int = 64
    goal: str = ""
    skills: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    # encoders
    state_hidden: int = 64
    point_channels: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 64
    # U-Net
    down_dims: tuple[int, ...] = (64, 128, 256)
    kernel_size: int = 5
    n_groups: int = 8
    step_embed_dim: int = 64
    # noise schedule
    train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    inference_steps: int = 10
    scheduler: str = "ddim"
    prediction: str = "sample"
    # baseline
    bc_hidden: tuple[int, ...] = (512, 512)
    # conditioners (policies.conditioners) and the settings of "gravmap" (policies.gravmap)
    conditioners: tuple[str, ...] = ()
    gravmap_grid: int = 8
    gravmap_extent: float = 0.12
    gravmap_rho: float = 0.03
    gravmap_sigma: float = 0.02

    def __post_init__(self):
        check_choice("policy_type", self.policy_type, POLICY_TYPES)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        check_choice("prediction", self.prediction, PREDICTIONS)
        check_range("obs_horizon", self.obs_horizon, 1, 16)
        check_range("pred_horizon", self.pred_horizon, 1, 256)
        check_range("action_horizon", self.action_horizon, 1, self.pred_horizon - self.obs_horizon + 1)
        factor = 2 ** (len(self.down_dims) - 1)
        if self.policy_type == "diffusion" and self.pred_horizon % factor:
            raise ParameterError(
                f"pred_horizon={self.pred_horizon} must be a multiple of {factor} "
                f"(2**(len(down_dims)-1) for down_dims={list(self.down_dims)})"
            )
        for key in self.state_keys:
            check_choice("state key", key, STATE_KEYS)
        check_range("points", self.points, 0, 8192)
        check_range("inference_steps", self.inference_steps, 1, self.train_timesteps)
        if any(lo >= hi for lo, hi in zip(self.crop_low, self.crop_high)):
            raise ParameterError(f"crop_low {self.crop_low} must lie below crop_high {self.crop_high} on every axis")
        if len(set(self.conditioners)) != len(self.conditioners):
            raise ParameterError(f"conditioners must not repeat, got {list(self.conditioners)}", "conditioners")
        conditioners_of(self)  # known names, and their settings check out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyConfig:
        d = dict(d)
        if "gravmap" in d:  # checkpoints before the conditioner registry: a flag of its own
            d["conditioners"] = ["gravmap"] if d.pop("gravmap") else []
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ParameterError(f"unknown policy config keys: {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Args:
        steps: gradient steps.
        batch_size: windows per step.
        lr: peak AdamW learning rate; weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up before the cosine decay.
        ema_power: power of the EMA warm-up (diffusers EMAModel, as Diffusion Policy).
        checkpoint_every: steps between checkpoints (the last step is always saved).
        log_every: steps between loss log rows.
        seed: seed of initialisation and batch sampling.
        device: "cpu", "cuda" or "auto" (CUDA when present).
        amp: mixed precision on CUDA.
        goal_noise_position: standard deviation of Gaussian noise on a goal-conditioned policy's
            goal position [m] per axis, drawn once per training window (0 = off): makes a policy
            tolerate perception's error (`fmb eval --goals perceived`).
        goal_noise_rotation: the same for the goal's orientation [rad] (a rotation vector per axis).
    """

    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    ema_power: float = 0.75
    checkpoint_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    goal_noise_position: float = 0.0
    goal_noise_rotation: float = 0.0

    def __post_init__(self):
        check_range("steps", self.steps, 1, 10_000_000)
        check_range("goal_noise_position", self.goal_noise_position, 0.0, 0.1, unit="m")
        check_range("goal_noise_rotation", self.goal_noise_rotation, 0.0, 0.5, unit="rad")
        check_range("batch_size", self.batch_size, 1, 65536)
        check_range("lr", self.lr, 1e-8, 1.0)
        check_range("checkpoint_every", self.checkpoint_every, 1, 10_000_000)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "policy": {
            "down_dims": (16, 32),
            "point_channels": (16, 32),
            "points": 64,
            "feature_dim": 16,
            "state_hidden": 32,
            "n_groups": 4,
            "step_embed_dim": 16,
            "bc_hidden": (64,),
            "train_timesteps": 20,
            "inference_steps": 4,
        },
        "train": {"batch_size": 16, "lr": 3e-3},
    },
    "small": {
        "policy": {"down_dims": (64, 128, 256), "point_channels": (32, 64, 128), "points": 256, "feature_dim": 64},
        "train": {"batch_size": 64, "lr": 1e-3},
    },
    "base": {
        "policy": {"down_dims": (128, 256, 512), "point_channels": (64, 128, 256), "points": 1024, "feature_dim": 128},
        "train": {"batch_size": 128, "lr": 3e-4},
    },
    "large": {
        "policy": {
            "down_dims": (256, 512, 1024),
            "point_channels": (64, 128, 256, 512),
            "points": 1024,
            "feature_dim": 256,
        },
        "train": {"batch_size": 256, "lr": 1e-4},
    },
}
"""Named sizes: `tiny` for smoke runs, `small` for this CPU, `base`/`large` for a GPU (Diffusion
Policy's own U-Net is `large`)."""


def default_state_keys(goal: str) -> tuple[str, ...]:
    """The state inputs a policy gets unless chosen: GOAL_STATE_KEYS with a goal, else the TCP state."""
    return GOAL_STATE_KEYS if goal else PolicyConfig.state_keys


def preset(name: str, **policy_overrides) -> tuple[PolicyConfig, TrainConfig]:
    """(PolicyConfig, TrainConfig) of the preset `name` with policy fields overridden; a policy
    with a `goal` and no `state_keys` gets GOAL_STATE_KEYS."""
    check_choice("preset", name, PRESETS)
    if "state_keys" not in policy_overrides:
        policy_overrides["state_keys"] = default_state_keys(policy_overrides.get("goal", ""))
    p = PRESETS[name]
    return PolicyConfig(**{**p["policy"], **policy_overrides}), TrainConfig(**p["train"])
