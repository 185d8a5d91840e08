"""Diffusion action policies (and a BC baseline) trained on episode stores, evaluated in simulation.

    from policies import Policy, PolicyRunner
    policy = Policy.load("runs/quickstart/diffusion")

Preference-scored selection and GravMap guidance build on `Policy.predict` (N candidates in one
batch) and `PolicyRunner(selector=...)`. Depends on `sim` and `cad`; never imports rclpy. Exports
are loaded on first use, so `import policies` (and the `fmb` command line) works without torch.
"""

from importlib import import_module

_EXPORTS = {
    "PolicyConfig": "policies.config",
    "TrainConfig": "policies.config",
    "preset": "policies.config",
    "SequenceDataset": "policies.dataset",
    "build_model": "policies.models",
    "Policy": "policies.policy",
    "PolicyRunner": "policies.runner",
    "train": "policies.train",
    "PolicyRunSpec": "policies.evaluate",
    "evaluate": "policies.evaluate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
