"""Training runs, checkpoints and their errors; training on a LeRobot-imported state-only store."""

import json

import numpy as np
import pytest

from fmb.cli import main
from policies.common import checkpoint
from policies.runtime.policy import Policy
from policies.train import train
from sim.lerobot import import_lerobot
from tests.policies.conftest import tiny, tiny_training
from tests.sim.test_lerobot import write_foreign_dataset

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def run(state_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "insert"
    train([state_store.root], out, tiny(), tiny_training(), progress=False, log=lambda m: None)
    return out


def _history(store, t=5):
    ep = store.load(0).data
    return [{k[4:]: v[i] for k, v in ep.items() if k.startswith("obs/")} for i in (t - 1, t)]


def test_run_folder_layout(run):
    assert (run / "run.json").is_file() and (run / "loss.png").stat().st_size > 1000
    rows = (run / "train_log.csv").read_text().splitlines()
    assert rows[0] == "step,loss,lr,seconds" and len(rows) == 1 + 4
    assert checkpoint.resolve(run).name == "step_0000020"
    assert not (run / "checkpoints/step_0000010/training.pt").exists()  # only the latest resume state is kept
    meta = json.loads((run / "checkpoints/step_0000020/config.json").read_text())
    assert meta["step"] == 20 and meta["policy"]["skills"] == ["insert"]


def test_reloaded_policy_gives_identical_actions(run, state_store):
    a = Policy.load(run, "cpu").predict(_history(state_store), 4, seed=3)
    b = Policy.load(run / "checkpoints/step_0000020", "cpu").predict(_history(state_store), 4, seed=3)
    assert a.shape == (4, 8, 7)
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_resume_continues_the_run(run, state_store, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    train([state_store.root], copy, tiny(), tiny_training(steps=30), resume=True, progress=False, log=lambda m: None)
    assert checkpoint.resolve(copy).name == "step_0000030"
    steps = [int(r.split(",")[0]) for r in (copy / "train_log.csv").read_text().splitlines()[1:]]
    assert steps == [5, 10, 15, 20, 25, 30]


def test_existing_run_is_not_overwritten(run, state_store, capsys):
    before = (run / "checkpoints/step_0000020/model.safetensors").read_bytes()
    assert main(["train", "--data", str(state_store.root), "--out", str(run), "--steps", "5", "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (run / "checkpoints/step_0000020/model.safetensors").read_bytes() == before


def test_train_state_inputs_from_the_command_line(state_store, tmp_path, capsys):
    out = tmp_path / "pose_only"
    args = ["train", "--data", str(state_store.root), "--steps", "2", "--quiet"]
    assert main([*args, "--out", str(out), "--state", "tcp_pose, gripper"]) == 0
    assert json.loads((out / "run.json").read_text())["policy"]["state_keys"] == ["tcp_pose", "gripper"]
    assert Policy.load(out, "cpu").predict(_history(state_store), 1, seed=0).shape == (1, 16, 7)
    assert main([*args, "--out", str(tmp_path / "bad"), "--state", "tcp_pose,force"]) == 2
    err = capsys.readouterr().err
    assert "force" in err and "wrench" in err  # names the bad key and the known ones
    assert not (tmp_path / "bad").exists()


def test_corrupt_and_mismatched_checkpoints_name_the_file(run, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run / "checkpoints/step_0000020", bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(checkpoint.CheckpointError, match="model.safetensors: cannot be read"):
        Policy.load(bad, "cpu")
    assert main(["eval", "--policy", str(bad), "--episodes", "1"]) == 2
    assert "model.safetensors" in capsys.readouterr().err

    shutil.copy(run / "checkpoints/step_0000020/model.safetensors", weights)
    meta = json.loads((bad / "config.json").read_text())
    meta["policy"]["down_dims"] = [16, 64]
    (bad / "config.json").write_text(json.dumps(meta))
    with pytest.raises(checkpoint.CheckpointError, match="shape"):
        Policy.load(bad, "cpu")
    (bad / "config.json").write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="config.json: not valid JSON"):
        Policy.load(bad, "cpu")
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        Policy.load(tmp_path / "nowhere", "cpu")


@pytest.mark.slow
def test_train_on_a_foreign_lerobot_state_only_dataset(tmp_path):
    """Another robot's data (5-D state, 3-D action, no images): encoders follow the data, and the
    policy is queried through the same API although our simulator has no such task."""
    write_foreign_dataset(tmp_path / "foreign", lengths=(12, 9))
    imported = import_lerobot(tmp_path / "foreign", tmp_path / "imported", progress=False)
    notes = []
    train([imported.root], tmp_path / "run", tiny(), tiny_training(steps=10), progress=False, log=notes.append)
    assert any("state inputs: state" in n for n in notes) and any("point encoder is off" in n for n in notes)
    policy = Policy.load(tmp_path / "run", "cpu")
    assert policy.config.state_keys == ("state",) and policy.skills == ("pick the cube",)
    state = imported.load(0).data["obs/state"]
    chunks = policy.predict([{"state": state[0]}, {"state": state[1]}], 2, seed=0)
    assert chunks.shape == (2, 8, 3) and np.all(np.isfinite(chunks))
