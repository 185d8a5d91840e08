"""Training: AdamW with a cosine schedule and warm-up, EMA weights (diffusers' EMAModel, power
0.75 as Diffusion Policy), periodic checkpoints, CSV loss log and a PNG loss curve.

Run folder::

    RUN/run.json                     what was trained on, with which configs
    RUN/train_log.csv                step, loss, lr, elapsed seconds
    RUN/loss.png                     the loss curve
    RUN/checkpoints/step_NNNNNNN/    see policies.common.checkpoint

`--resume` continues from the latest checkpoint (model, EMA, optimiser, schedule, step) up to the
requested total steps; without it an existing run is never overwritten.

Threads: training takes the training thread budget (`fmb_core.threads`: the machine's usable cores),
and on the CPU a `fmb_core.threads.ThreadTuner` keeps it on the thread count that steps fastest, so a
busy machine (another job on one of the cores) does not slow every step down by threads waiting
for each other. `threads` > 0 fixes the count instead. The same seed gives the same run for the
same thread count; floating-point sums may differ in their last bits between counts.

Several devices (`devices` > 1, or started by torchrun): torch DistributedDataParallel, one process
per GPU (nccl) or N CPU processes (gloo); `--batch-size` stays the effective batch, shared out
between the processes, and the learning rate stays as given (`policies.distributed`). Rank 0 alone
logs and writes the run folder, the same files as one process; `--resume` works the same.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from fmb_core import threads as thread_budget
from fmb_core.errors import ParameterError
from policies import distributed
from policies.common import checkpoint
from policies.common.dataset import SequenceDataset, fit_config_to_data, open_stores
from policies.config import PolicyConfig, TrainConfig
from policies.runtime.policy import resolve_device


def _log(msg: str) -> None:
    print(msg, flush=True)


def _quiet(msg: str) -> None:
    pass


def train(
    data: list[str | Path],
    out: str | Path,
    policy_config: PolicyConfig,
    train_config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    log=_log,
    threads: int = 0,
    devices: int = 1,
) -> dict:
    """Train a policy on the episode stores `data` into the run folder `out`; return a summary.
    `threads` > 0 fixes the CPU threads (default: the training budget, tuned; module docstring).
    `devices` > 1 trains with DistributedDataParallel in that many processes of this machine (one
    per GPU, or gloo processes on the CPU); a process that torchrun started joins torchrun's group
    instead, and returns {} unless it is rank 0 (`policies.distributed`: also how batch and
    learning rate scale)."""
    out = Path(out).absolute()
    launched = distributed.torchrun_env()
    if launched is not None:
        if devices not in (1, launched[1]):
            raise ParameterError(f"--devices {devices}: torchrun started {launched[1]} processes; leave --devices out")
        group = distributed.join(*launched, resolve_device(train_config.device))
        try:
            check_run_folder(out, resume)  # every rank reads it before rank 0 writes
            group.barrier()
            summary = _train(group, data, out, policy_config, train_config, resume, progress, log, threads)
            return summary if group.main else {}
        finally:
            group.close()
    check_run_folder(out, resume)
    if devices == 1:
        return _train(distributed.SINGLE, data, out, policy_config, train_config, resume, progress, log, threads)
    device_type = distributed.check_devices(devices, train_config.device)
    check_batch(train_config.batch_size, devices)
    open_stores(data)  # a bad store is named here, not in every process
    child_log = _log if log is _log else _quiet  # a caller's own `log` does not cross processes
    args = (data, out, policy_config, train_config, resume, progress, child_log, threads)
    return distributed.spawn(_train, devices, device_type, args)


def check_run_folder(out: Path, resume: bool) -> None:
    """ParameterError unless `out` can take a new run (or, with `resume`, holds one to continue)."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out}: is a file, expected a run folder")
    has_run = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    if has_run and not resume:
        raise ParameterError(f"--out {out}: holds a trained run; pass --resume to continue it or choose another folder")
    if not has_run and out.is_dir() and any(out.iterdir()) and not (out / "run.json").exists():
        raise ParameterError(f"--out {out}: folder is not empty and is not a run")
    if resume and not has_run:
        raise ParameterError(f"--resume: {out} holds no checkpoint to resume from")


def check_batch(batch_size: int, world: int) -> None:
    """ParameterError unless `world` processes can share a batch of `batch_size` windows evenly."""
    if batch_size % world:
        raise ParameterError(
            f"--batch-size {batch_size}: not a multiple of the {world} training processes "
            f"(each takes batch_size / {world} windows)",
            "batch_size",
            batch_size,
        )


def _train(
    group: distributed.Group,
    data: list[str | Path],
    out: Path,
    policy_config: PolicyConfig,
    train_config: TrainConfig,
    resume: bool,
    progress: bool,
    log,
    threads: int,
) -> dict:
    """One process's training (module docstring); `group` says which of how many it is. Only
    rank 0 logs and writes the run folder."""
    import torch
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel
    from tqdm import tqdm

    from policies.factory import build_model

    check_batch(train_config.batch_size, group.world)
    if not group.main:
        progress, log = False, (lambda message: None)
    stores = open_stores(data)
    start_step = 0
    resume_state = None
    if resume:
        folder = checkpoint.resolve(out)
        meta = checkpoint.load_meta(folder)
        policy_config = PolicyConfig.from_dict(meta["policy"])
        resume_state = checkpoint.load_training(folder)
        start_step = int(meta["step"])
        log(f"resuming {out.name} from step {start_step} ({folder.name})")
    else:
        policy_config, notes = fit_config_to_data(policy_config, stores)
        for note in notes:
            log(f"note: {note}")
    device = resolve_device(train_config.device)  # the device type; `place` is this process's one
    place = f"cuda:{group.local_rank}" if device == "cuda" and group.world > 1 else device
    budget = thread_budget.configure("training", workers=group.world, threads=threads, log=log)
    tuner = None
    if device == "cpu" and budget.source == "rule" and group.world == 1:  # a group's ranks keep the rule's
        tuner = thread_budget.ThreadTuner(budget.threads, torch.set_num_threads)
    torch.manual_seed(train_config.seed)
    # One process: the run's generator as before; a group: one generator per rank, so that the ranks
    # draw different windows (and, reseeded after the model is built, different diffusion noise).
    rng = np.random.default_rng(
        train_config.seed + start_step if group.world == 1 else [train_config.seed + start_step, group.rank]
    )
    local_batch = train_config.batch_size // group.world

    dataset = SequenceDataset(stores, policy_config, seed=train_config.seed, progress=progress)
    dataset.goal_noise = (train_config.goal_noise_position, train_config.goal_noise_rotation)
    if any(dataset.goal_noise) and not policy_config.goal:
        raise ParameterError("--goal-noise perturbs the goal input: the policy has no --goal")
    if resume:
        if {k: list(v) for k, v in dataset.shapes.items()} != meta["shapes"]:
            raise checkpoint.CheckpointError(
                f"{folder}: trained on features {meta['shapes']}, but --data gives {dataset.shapes}"
            )
        norms = meta["normalizers"]
    else:
        norms = {"state": dataset.state_normalizer.to_dict(), "action": dataset.action_normalizer.to_dict()}
    from policies.common.features import MinMaxNormalizer

    state_norm, action_norm = MinMaxNormalizer.from_dict(norms["state"]), MinMaxNormalizer.from_dict(norms["action"])
    dataset.state_normalizer, dataset.action_normalizer = state_norm, action_norm

    model = build_model(policy_config, dataset.shapes).to(place)
    ema = EMAModel(model.parameters(), power=train_config.ema_power, use_ema_warmup=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, train_config.warmup_steps, train_config.steps)
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        ema.load_state_dict(resume_state["ema"])
        ema.to(place)
        optimizer.load_state_dict(resume_state["optimizer"])
        lr_schedule.load_state_dict(resume_state["lr_schedule"])
    step_loss = model.loss  # one process: the model's loss; a group: through DDP, which averages the gradients
    if group.world > 1:
        torch.manual_seed(train_config.seed + start_step + 7919 * group.rank)  # DDP copies rank 0's weights
        step_loss = distributed.data_parallel(model, group, device)
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"{policy_config.policy_type} policy, {n_params / 1e6:.2f} M parameters, {device}"
        + (f" x {group.world} processes ({group.backend}, {local_batch} windows each)" if group.world > 1 else "")
        + "; "
        f"{len(dataset.episodes)} episodes, {len(dataset)} windows; inputs: "
        + ", ".join(["state"] + [k for k in ("points", "image") if k in dataset.shapes])
    )

    run_info = {
        "data": [str(Path(p).absolute()) for p in data],
        "skills": list(policy_config.skills),
        "dataset": dataset.save_summary(),
        "policy": policy_config.to_dict(),
        "train": dataclasses.asdict(train_config),
        "parameters": n_params,
        "device": device,
        **({"distributed": {"processes": group.world, "backend": group.backend}} if group.world > 1 else {}),
    }
    log_file = out / "train_log.csv"
    if group.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(run_info, indent=1))
        if not resume or not log_file.exists():
            log_file.write_text("step,loss,lr,seconds\n")

    def save(step: int) -> Path:
        ema_model = build_model(policy_config, dataset.shapes)
        ema.copy_to(ema_model.parameters())
        meta = {
            "policy": policy_config.to_dict(),
            "shapes": {k: list(v) for k, v in dataset.shapes.items()},
            "normalizers": norms,
            "data": run_info["dataset"] | {"stores": run_info["data"]},
            "observation": {k: stores[0].meta.get(k) for k in ("cameras", "image_size", "point_cloud", "fps")},
            "step": step,
            "train": run_info["train"],
        }
        training = {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "optimizer": optimizer.state_dict(),
            "lr_schedule": lr_schedule.state_dict(),
        }
        folder = checkpoint.save(checkpoint.step_dir(out, step), meta, ema_model.state_dict(), training)
        for older in (out / "checkpoints").glob("step_*"):  # only the latest resume state is kept
            if older != folder and (older / checkpoint.TRAINING).exists():
                (older / checkpoint.TRAINING).unlink()
        plot_loss(log_file, out / "loss.png")
        return folder

    use_amp = train_config.amp and device == "cuda"
    t0 = time.perf_counter()
    losses: list[float] = []
    model.train()
    bar = tqdm(
        range(start_step, train_config.steps),
        initial=start_step,
        total=train_config.steps,
        desc=f"train {policy_config.policy_type}",
        unit="step",
        disable=not progress,
    )
    last_saved = None
    with open(log_file, "a", newline="") if group.main else contextlib.nullcontext() as fh:
        writer = csv.writer(fh) if group.main else None
        for step in bar:
            began = time.perf_counter()
            batch = {k: torch.as_tensor(v, device=place) for k, v in dataset.sample(local_batch, rng).items()}
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_amp):
                loss = step_loss(batch)
            mean_loss = group.mean(loss)  # the whole batch's (every rank sees the same value)
            if not torch.isfinite(mean_loss):
                raise ParameterError(
                    f"training diverged at step {step + 1} (loss {mean_loss.item()}); lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # a group: DDP averages the gradients over the ranks here
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            lr_schedule.step()
            ema.step(model.parameters())
            losses.append(mean_loss.item())
            if tuner is not None:
                tuner.record(time.perf_counter() - began)
            done = step + 1
            if group.main and (done % train_config.log_every == 0 or done == train_config.steps):
                mean = float(np.mean(losses))
                writer.writerow(
                    [done, f"{mean:.6f}", f"{lr_schedule.get_last_lr()[0]:.3e}", f"{time.perf_counter() - t0:.1f}"]
                )
                fh.flush()
                bar.set_postfix(loss=f"{mean:.4f}")
                losses.clear()
            if group.main and (done % train_config.checkpoint_every == 0 or done == train_config.steps):
                last_saved = save(done)
    bar.close()
    seconds = time.perf_counter() - t0
    if last_saved is None and group.main:  # resumed a run that had already reached --steps
        last_saved = checkpoint.resolve(out)
    agree = group.agree(model.parameters())  # DDP keeps the replicas identical; checked once at the end
    group.barrier()  # rank 0's checkpoint is on disk before any process returns
    log(f"trained to step {train_config.steps} in {seconds:.0f} s; checkpoint {last_saved}")
    return {
        "run": str(out),
        "checkpoint": str(last_saved),
        "steps": train_config.steps,
        "seconds": seconds,
        "threads": budget.to_dict() | {"tuned": tuner.choices if tuner is not None else []},
        "devices": {
            "processes": group.world,
            "backend": group.backend or device,
            "batch_per_process": local_batch,
            "replicas_agree": agree,
        },
    }


def read_log(log_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses) from a train_log.csv."""
    with open(log_file) as fh:
        rows = list(csv.DictReader(fh))
    return np.array([int(r["step"]) for r in rows]), np.array([float(r["loss"]) for r in rows])


def plot_loss(log_file: Path, png: Path) -> Path | None:
    """Write the loss curve of `log_file` to `png` (log scale); None when there is nothing to plot."""
    steps, losses = read_log(log_file)
    if len(steps) == 0:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(steps, losses, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png
