"""Diffusion action policies (and a BC baseline) trained on episode stores, evaluated in simulation.

    from policies import Policy, PolicyRunner
    policy = Policy.load("runs/quickstart/diffusion")

Laid out by role (as LeRobot's policies): `config` (PolicyConfig, TrainConfig, presets),
`common/` (dataset windows, features and normalisation, encoders, the model contract,
checkpoints), one folder per model family (`diffusion/`, `bc/`; `factory.build_model` picks one),
`train` (the training loop), `runtime/` (Policy, the runners, the robot's loop, the skill
controller), `experiments/` (`fmb eval`, reports, the ablation, benches), `preference/` (DeformPAM
selection) and `gravmap/` (GravMAD sub-goal conditioning and guidance); `cli` and `flags` are the
command line's. Preference-scored selection and GravMap guidance build on `Policy.predict` (N
candidates in one batch) and `PolicyRunner(selector=...)`. Depends on `sim` and `cad`; never
imports rclpy. Exports are loaded on first use, so `import policies` (and the `fmb` command line)
works without torch.
"""

from importlib import import_module

_EXPORTS = {
    "PolicyConfig": "policies.config",
    "TrainConfig": "policies.config",
    "preset": "policies.config",
    "SequenceDataset": "policies.common.dataset",
    "build_model": "policies.factory",
    "Policy": "policies.runtime.policy",
    "PolicyRunner": "policies.runtime.runner",
    "train": "policies.train",
    "PolicyRunSpec": "policies.experiments.evaluate",
    "evaluate": "policies.experiments.evaluate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
