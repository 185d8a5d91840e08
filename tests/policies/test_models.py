"""Diffusion and BC models: real training steps on tiny networks, sampling, schedulers."""

import numpy as np
import pytest
import torch

from fmb_core.errors import ParameterError
from policies.common.dataset import SequenceDataset, fit_config_to_data
from policies.config import PolicyConfig, preset
from policies.factory import build_model
from tests.policies.conftest import tiny


def _batch(ds, n=16, seed=0):
    return {k: torch.as_tensor(v) for k, v in ds.sample(n, np.random.default_rng(seed)).items()}


@pytest.mark.parametrize(
    "policy_type,prediction", [("diffusion", "epsilon"), ("diffusion", "sample"), ("bc", "epsilon")]
)
def test_loss_decreases_on_a_fixed_batch(cloud_store, policy_type, prediction):
    torch.manual_seed(0)
    config, _ = fit_config_to_data(tiny(policy_type=policy_type, prediction=prediction), [cloud_store])
    ds = SequenceDataset([cloud_store], config, progress=False)
    model = build_model(config, ds.shapes)
    batch = _batch(ds)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        torch.manual_seed(1)  # the same noise draw every step: a fixed regression problem
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


@pytest.mark.parametrize("scheduler", ["ddim", "dpm", "ddpm"])
def test_sampling_shapes_and_seeded_determinism(state_store, scheduler):
    config, _ = fit_config_to_data(tiny(scheduler=scheduler), [state_store])
    ds = SequenceDataset([state_store], config, progress=False)
    model = build_model(config, ds.shapes).eval()
    obs = {k: v[:2] for k, v in _batch(ds).items() if k != "action"}
    a = model.sample(obs, 5, torch.Generator().manual_seed(7))
    b = model.sample(obs, 5, torch.Generator().manual_seed(7))
    c = model.sample(obs, 5, torch.Generator().manual_seed(8))
    assert a.shape == (2, 5, 8, 7) and torch.all(a.abs() <= 1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.allclose(a[0, 0], a[0, 1])  # candidates differ from each other


def test_temperature_scales_the_spread_of_candidates(state_store):
    config, _ = fit_config_to_data(tiny(scheduler="ddim"), [state_store])
    ds = SequenceDataset([state_store], config, progress=False)
    model = build_model(config, ds.shapes).eval()
    obs = {k: v[:1] for k, v in _batch(ds).items() if k != "action"}

    def spread(temperature):
        out = model.sample(obs, 32, torch.Generator().manual_seed(3), temperature=temperature)[0]
        return out.std(dim=0).mean().item(), out

    cold, chunks = spread(0.0)
    assert cold == 0.0 and torch.equal(chunks[0], chunks[-1])  # DDIM from zero noise: one chunk
    assert spread(0.3)[0] < spread(1.0)[0] < spread(1.5)[0]


def test_bc_candidates_are_identical(state_store):
    config, _ = fit_config_to_data(tiny(policy_type="bc"), [state_store])
    ds = SequenceDataset([state_store], config, progress=False)
    model = build_model(config, ds.shapes).eval()
    out = model.sample({k: v[:1] for k, v in _batch(ds).items() if k != "action"}, 3)
    assert out.shape == (1, 3, 8, 7) and torch.equal(out[0, 0], out[0, 2])


def test_config_checks_name_the_problem():
    with pytest.raises(ParameterError, match="pred_horizon=12 must be a multiple of 8"):
        PolicyConfig(pred_horizon=12, down_dims=(8, 16, 32, 64))
    with pytest.raises(ParameterError, match="unknown policy_type 'gan'"):
        PolicyConfig(policy_type="gan")
    with pytest.raises(ParameterError, match="action_horizon"):
        PolicyConfig(action_horizon=20)
    with pytest.raises(ParameterError, match="unknown preset 'huge'") as raised:
        preset("huge")  # the core names its field; the command line says --config (fmb.cli.flag_for)
    assert raised.value.field == "preset" and "small" in raised.value.allowed


def test_a_goal_conditioned_preset_leaves_the_tcp_state_out():
    from policies.config import GOAL_STATE_KEYS

    assert preset("small")[0].state_keys == ("tcp_pose", "tcp_vel", "wrench", "gripper")
    assert preset("small", goal="tcp_goal")[0].state_keys == GOAL_STATE_KEYS == ("gripper",)
    assert preset("small", goal="tcp_goal", state_keys=("tcp_pose",))[0].state_keys == ("tcp_pose",)


def test_the_command_line_names_the_cores_fields_by_their_flags(state_store, tmp_path, capsys):
    """The core raises ParameterError naming its field (`batch_size`, `preset`); `fmb` prints the flag."""
    from fmb.cli import main

    base = ["train", "--data", str(state_store.root), "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*base, "--batch-size", "0"]) == 2
    assert "fmb: error: --batch-size=0 is out of range [1, 65536]" in capsys.readouterr().err
    assert main([*base, "--config", "huge"]) == 2
    assert "unknown --config 'huge'; known: tiny, small" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing written
