"""Training on several devices: torch.distributed process groups for `fmb train --devices N`.

Two ways in:

- `fmb train --devices N`: this process checks the request and spawns N training processes on this
  machine (`spawn`): one per GPU with the nccl backend, or N CPU processes with the gloo backend.
- `torchrun --nproc-per-node N [--nnodes M ...] -m fmb train ...`: torchrun starts the processes (on
  one machine or several) and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT;
  every process joins the group from them (`from_torchrun`).

Batch and learning rate (the rule chosen here): `--batch-size` is the effective batch, the windows
of one optimiser step summed over all processes. Each of the N processes samples its own
batch_size / N windows (N must divide it) with its own generator, DistributedDataParallel averages
the gradients, and the learning rate is left as given. So a run is the same optimisation problem on
1 or N devices (the same loss curve within sampling noise), only each step is shared out. To use more
devices for a bigger batch, raise --batch-size, and scale --lr with it (linearly is the usual start).
"""

from __future__ import annotations

import dataclasses
import os

from fmb_core.errors import ParameterError, check_range

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
MAX_DEVICES = 64


@dataclasses.dataclass(frozen=True)
class Group:
    """This process's place in the training group.

    Attributes:
        rank: global rank (0 writes files and logs).
        world: processes in the group (1 = not distributed).
        local_rank: rank on this machine (its GPU index with CUDA).
        backend: "nccl", "gloo" or "" (one process).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder and logs."""
        return self.rank == 0

    def mean(self, value):
        """The mean of a scalar tensor over the group (the tensor itself for one process)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value / self.world

    def agree(self, parameters) -> bool:
        """Whether every process holds bitwise the same `parameters` (an iterable of tensors)."""
        import torch

        flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in parameters])
        if self.world == 1:
            return True
        import torch.distributed as dist

        facts = torch.stack([flat.sum(), flat.square().sum(), (flat * torch.arange(len(flat))).sum()])
        low, high = facts.clone(), facts.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(torch.equal(low, high))

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


SINGLE = Group()


def data_parallel(model, group: Group, device_type: str):
    """`model.loss` as the forward of a DistributedDataParallel module (its backward averages the
    gradients over `group`)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    class Loss(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, batch):
            return self.inner.loss(batch)

    return DistributedDataParallel(Loss(model), device_ids=[group.local_rank] if device_type == "cuda" else None)


def torchrun_env(environ=None) -> tuple[int, int, int] | None:
    """(rank, world, local_rank) when torchrun (or another launcher) started this process in a
    group of more than one, else None."""
    environ = os.environ if environ is None else environ
    if not all(k in environ for k in TORCHRUN_VARIABLES):
        return None
    rank, world, local = (int(environ[k]) for k in TORCHRUN_VARIABLES)
    return (rank, world, local) if world > 1 else None


def check_devices(devices: int, device: str) -> str:
    """The device type ("cuda" or "cpu") that `devices` processes train on with `--device`
    `device` ("auto", "cpu", "cuda"); ParameterError naming what is missing."""
    import torch

    check_range("--devices", devices, 1, MAX_DEVICES)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cpu" or (device == "auto" and gpus == 0):
        return "cpu"
    if device not in ("auto", "cuda"):
        raise ParameterError(f"--device {device!r}: expected auto, cpu or cuda", "device", device)
    if gpus < devices:
        raise ParameterError(
            f"--devices {devices}: {gpus} CUDA device(s) here; use at most {gpus}, or --device cpu for "
            f"{devices} CPU processes (gloo)",
            "devices",
            devices,
        )
    return "cuda"


def join(rank: int, world: int, local_rank: int, device_type: str) -> Group:
    """Join the process group (MASTER_ADDR / MASTER_PORT from the environment): nccl on CUDA (and
    select this process's GPU), gloo on the CPU."""
    import torch
    import torch.distributed as dist

    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, rank=rank, world_size=world)
    return Group(rank, world, local_rank, backend)


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on (for the spawned group's rendezvous)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(fn, devices: int, device_type: str, args: tuple):
    """Run `fn(group, *args)` in `devices` new processes of one group on this machine; return what
    rank 0's call returned. An error in any of them is raised here, an FmbError as itself."""
    import torch.multiprocessing as mp

    from fmb_core.errors import FmbError

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(free_port())
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    try:
        mp.spawn(_child, (fn, devices, device_type, args, results), nprocs=devices, join=True)
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1]
        name, _, message = last.partition(": ")
        if name.rsplit(".", 1)[-1] in ("ParameterError", "CheckpointError", "FmbError"):
            raise FmbError(message) from None
        raise
    outcome = None
    while not results.empty():
        outcome = results.get()
    return outcome


def _child(rank: int, fn, devices: int, device_type: str, args: tuple, results) -> None:
    group = join(rank, devices, rank, device_type)
    try:
        out = fn(group, *args)
        if group.main:
            results.put(out)
    finally:
        group.close()
