"""fmb train on several processes: real torch.distributed (gloo, CPU), a tiny policy, a few steps."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmb_core.errors import ParameterError
from policies import distributed
from policies.common import checkpoint
from policies.train import check_batch, train
from tests.policies.conftest import tiny, tiny_training


@pytest.mark.slow
@pytest.mark.train
def test_two_gloo_processes_train_a_checkpoint_that_loads_and_acts_and_torchrun_resumes_it(state_store, tmp_path):
    out = tmp_path / "run"
    training = tiny_training(steps=4, checkpoint_every=2, log_every=2)
    summary = train([state_store.root], out, tiny(), training, progress=False, log=lambda m: None, devices=2)
    assert summary["devices"] == {"processes": 2, "backend": "gloo", "batch_per_process": 8, "replicas_agree": True}
    assert checkpoint.resolve(out).name == "step_0000004"
    assert json.loads((out / "run.json").read_text())["distributed"] == {"processes": 2, "backend": "gloo"}
    assert [line.split(",")[0] for line in (out / "train_log.csv").read_text().splitlines()] == ["step", "2", "4"]

    from policies.runtime.policy import Policy
    from sim.env import make_env

    policy = Policy.load(out, "cpu")
    env = make_env("insert")
    env.reset(seed=0)
    from policies.runtime.runner import RunnerConfig, make_runner

    runner = make_runner(policy, RunnerConfig(), skill="insert")
    runner.reset(env)
    assert runner.act(env).shape == (7,)

    # torchrun starts the processes itself; the run resumes from step 4 to 6
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "fmb", "train", "--data", str(state_store.root), "--out", str(out), "--resume", "--steps", "6"]
    cmd += ["--batch-size", "16", "--device", "cpu", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"run": ') == 1  # rank 0 alone reports
    resumed = json.loads(done.stdout[done.stdout.index("{\n") :])
    assert resumed["devices"]["processes"] == 2 and resumed["devices"]["replicas_agree"]
    assert checkpoint.resolve(out).name == "step_0000006"

    # What Ray ships to a cluster's nodes: the spec with the checkpoint's files; it builds where the run is not
    import pickle

    from policies.experiments.evaluate import PolicyRunSpec

    shipped = pickle.dumps(PolicyRunSpec(str(out), task="insert", device="cpu", goals="truth").portable())
    out.rename(tmp_path / "moved")
    local = pickle.loads(shipped).local_spec(tmp_path / "node")
    assert local.policy.startswith(str(tmp_path / "node")) and sorted(p.name for p in Path(local.policy).iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    env, runner = local.build()
    env.reset(seed=0)
    runner.reset(env)
    assert runner.act(env).shape == (7,)


def test_devices_beyond_the_gpus_and_uneven_batches_are_clear_errors():
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match=r"--devices 2: 0 CUDA device\(s\) here.*--device cpu"):
            distributed.check_devices(2, "cuda")
        assert distributed.check_devices(2, "auto") == "cpu"
    assert distributed.check_devices(2, "cpu") == "cpu"
    with pytest.raises(ParameterError, match="--batch-size 15: not a multiple of the 2 training processes"):
        check_batch(15, 2)
    assert distributed.torchrun_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == (1, 2, 1)
    assert distributed.torchrun_env({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None
    assert distributed.torchrun_env({}) is None
