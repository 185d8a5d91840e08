"""A policy run spec that carries its checkpoints, for workers that do not have the run folders.

Ray actors on a cluster's other nodes cannot read this machine's `runs/...`. `portable(spec)` reads
the files that rebuild each policy (config.json + model.safetensors of the resolved checkpoint, not
the optimiser's resume state) and each reward model once, here; the result is put in the object
store once (`sim.parallel`) and every node unpacks it once into its temporary folder
(`fmb_shipped/<content hash>/`), then builds the ordinary spec with those folders in place of the
original paths. `sim.collect.run_many` calls `spec.portable()` for Ray executors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

from policies.common import checkpoint

FILES = ("config.json", "model.safetensors")
"""What rebuilds a policy checkpoint or a reward model (both keep these names)."""


@dataclasses.dataclass(frozen=True)
class PortableRunSpec:
    """`spec` plus the files of the folders it names (original path -> ((file name, bytes), ...))."""

    spec: object
    folders: tuple[tuple[str, tuple[tuple[str, bytes], ...]], ...]

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def backend(self) -> str:
        return self.spec.backend

    def local_spec(self, root: str | Path | None = None):
        """The spec with every shipped folder unpacked under `root` (default: this machine's
        temporary folder) and named there."""
        digest = hashlib.sha256()
        for path, files in self.folders:
            digest.update(path.encode())
            for name, data in files:
                digest.update(name.encode() + data)
        base = Path(root or tempfile.gettempdir()) / "fmb_shipped" / digest.hexdigest()[:16]
        local = {path: str(_unpack(base / str(i), files)) for i, (path, files) in enumerate(self.folders)}
        spec = self.spec
        runner = dataclasses.replace(spec.runner, reward=local.get(spec.runner.reward, spec.runner.reward))
        return dataclasses.replace(
            spec,
            policy=local.get(spec.policy, spec.policy),
            stages=tuple((skill, local.get(source, source)) for skill, source in spec.stages),
            runner=runner,
        )

    def build(self):
        return self.local_spec().build()


def portable(spec, policies: list[str]) -> PortableRunSpec:
    """`spec` (a PolicyRunSpec) with the files of `policies` (its run or checkpoint folders, as
    the spec names them) and of its reward model packed in."""
    folders = {p: checkpoint.resolve(p) for p in policies if p}
    if spec.runner.reward:
        folders[spec.runner.reward] = Path(spec.runner.reward)
    packed = tuple(
        (path, tuple((name, (folder / name).read_bytes()) for name in FILES if (folder / name).is_file()))
        for path, folder in folders.items()
    )
    return PortableRunSpec(spec, packed)


def _unpack(folder: Path, files) -> Path:
    """Write `files` into `folder` once (atomically: workers of one node may race)."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    for name, data in files:
        (scratch / name).write_bytes(data)
    try:
        os.rename(scratch, folder)
    except OSError:  # another worker was first
        for name, _ in files:
            (scratch / name).unlink()
        scratch.rmdir()
    return folder
