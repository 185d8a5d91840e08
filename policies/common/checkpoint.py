"""Checkpoints: a folder that alone rebuilds a policy.

    CKPT/config.json         schema, policy config, feature shapes, normaliser stats, data summary, step
    CKPT/model.safetensors   the EMA weights (what acting uses)
    CKPT/training.pt         raw weights, EMA, optimiser and LR-schedule state (only to resume training)

A run folder keeps periodic checkpoints under RUN/checkpoints/step_NNNNNNN/; a path to a run
resolves to its latest checkpoint. Every folder is written under a temporary name and renamed into
place, so a crash never leaves half a checkpoint. A corrupt or mismatched file is a CheckpointError
that names the file and what is wrong.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fmb_core.atomic import atomic_dir
from fmb_core.errors import FmbError
from fmb_core.jsonfile import read_versioned

SCHEMA = "fmb-policy/1"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TRAINING = "training.pt"
_STEP_RE = re.compile(r"^step_(\d+)$")


class CheckpointError(FmbError):
    """A checkpoint is missing, corrupt, or does not match the code or data it is used with."""


def step_dir(run: Path, step: int) -> Path:
    return Path(run) / "checkpoints" / f"step_{step:07d}"


def resolve(path: str | Path) -> Path:
    """The checkpoint folder for `path`: a checkpoint itself, or a run (its latest checkpoint)."""
    path = Path(path)
    if (path / CONFIG).is_file():
        return path
    steps = sorted((int(m.group(1)), p) for p in (path / "checkpoints").glob("step_*") if (m := _STEP_RE.match(p.name)))
    if steps:
        return steps[-1][1]
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run folder")
    raise CheckpointError(f"{path}: neither a checkpoint (no {CONFIG}) nor a run (no checkpoints/step_*)")


def save(folder: Path, meta: dict, weights: dict, training: dict | None = None) -> Path:
    """Write a checkpoint atomically. `weights`: name -> tensor; `training`: resume state."""
    import torch
    from safetensors.torch import save_file

    with atomic_dir(folder) as tmp:
        (tmp / CONFIG).write_text(json.dumps({"schema": SCHEMA, **meta}, indent=1))
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / WEIGHTS))
        if training is not None:
            torch.save(training, tmp / TRAINING)
    return Path(folder)


def load_meta(folder: Path) -> dict:
    """The parsed config.json of a checkpoint folder."""
    return read_versioned(Path(folder) / CONFIG, SCHEMA, ("policy", "shapes", "normalizers"), CheckpointError)


def load_weights(folder: Path, model) -> None:
    """Load model.safetensors into `model`; CheckpointError on a corrupt file or any mismatch."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(folder) / WEIGHTS
    if not file.is_file():
        raise CheckpointError(f"{file}: missing")
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file}: cannot be read ({e})") from None
    state = {_current_name(k): v for k, v in state.items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{file}: does not match the model in {CONFIG} "
            f"(missing {len(missing)} tensors e.g. {missing[:2]}, unexpected {len(extra)} e.g. {extra[:2]})"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{file}: tensor {name} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[name].shape)}"
            )
    model.load_state_dict(state)


LEGACY_PREFIXES = {"encoder.gravmap.": "encoder.conditioners.gravmap."}
"""Tensor name prefixes of older checkpoints -> today's (GravMap's token encoder before the
conditioner registry, `policies.conditioners`)."""


def _current_name(name: str) -> str:
    for old, new in LEGACY_PREFIXES.items():
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def load_training(folder: Path) -> dict:
    """The resume state of a checkpoint (CheckpointError when absent or unreadable)."""
    import torch

    file = Path(folder) / TRAINING
    if not file.is_file():
        raise CheckpointError(f"{file}: missing; this checkpoint cannot resume training")
    try:
        return torch.load(file, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds for a damaged pickle/zip
        raise CheckpointError(f"{file}: cannot be read ({type(e).__name__}: {e})") from None


def trained_to(run: str | Path) -> int:
    """The training step of the latest checkpoint of `run` (0 when it has none)."""
    try:
        return int(load_meta(resolve(run))["step"])
    except CheckpointError:
        return 0
