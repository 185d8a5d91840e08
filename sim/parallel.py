"""Where rollouts run: in this process, in local worker processes, or as Ray actors on a cluster.

Every rollout-shaped command (`fmb sim collect`, `fmb sim expert-eval`, `fmb eval`, the ablation's
evaluations, `fmb bench scale`) schedules its episodes through `imap` (via `sim.collect.run_many`),
so one definition decides where they run:

- `Executor("local", workers=1)`: in this process.
- `Executor("local", workers=N)`: N spawned worker processes of this machine (a process pool; a
  worker that dies ends the run with WorkerDied, the finished episodes kept).
- `Executor("ray", workers=N, address=A)`: N Ray actors, on the cluster at A, or on a local Ray
  instance started for the run (and stopped after it) when A is "". Needs the `[scale]` extra.

`make_executor` picks "ray" when a Ray address is given (`--ray-address`, else the environment's
RAY_ADDRESS) and local processes otherwise; `--executor ray` asks for a local Ray instance.
Local processes stay the default on one machine: they start faster and need no extra.

A Ray actor builds its environment and controller (a loaded policy) once and keeps them warm
across its episodes. The spec it builds from is put in the object store once and shared by every
actor. Each actor runs one episode at a time and gets the next when it returns, so results
arrive in completion order, each as soon as it is done (the caller commits it and counts it). A
job's result depends only on the job (an episode's seed), never on which worker ran it or when.

A worker process that dies (killed, out of memory, a crashed renderer) loses only the episode it
was running: a fresh actor replaces it and runs that episode again, up to `retries` times; after
that the episode is given to `on_failure` (a recorded failure) and the fresh actor goes on with the
remaining ones. An exception raised by the episode's own code is not retried: it is a bug, and it stops the
run as it does with local processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing as mp
import os
import socket
from collections.abc import Callable, Iterable, Iterator

from fmb_core.errors import FmbError, ParameterError, check_choice, check_range

EXECUTORS = ("local", "ray")
"""Where episodes run: local worker processes or Ray actors."""

MAX_LOCAL_WORKERS = 64
MAX_RAY_WORKERS = 1024
RAY_ADDRESS_ENV = "RAY_ADDRESS"
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a Ray cluster's address to answer before the run fails [s]."""


@dataclasses.dataclass(frozen=True)
class Executor:
    """Where the episodes of one command run.

    Attributes:
        kind: one of EXECUTORS.
        workers: worker processes (local) or actors (ray); 1..64 local, 1..1024 on Ray.
        address: Ray cluster address ("host:port", "ray://host:port" or "auto"); "" = start a
            local Ray instance for the run. Only with kind "ray".
        retries: Ray: how often an episode whose actor died is run again (on a fresh actor)
            before it is recorded as failed.
    """

    kind: str = "local"
    workers: int = 1
    address: str = ""
    retries: int = 2

    def __post_init__(self):
        check_choice("executor", self.kind, EXECUTORS)
        check_range("workers", self.workers, 1, MAX_RAY_WORKERS if self.kind == "ray" else MAX_LOCAL_WORKERS)
        check_range("retries", self.retries, 0, 100)
        if self.address and self.kind != "ray":
            raise ParameterError(
                f"--ray-address {self.address!r} runs episodes on Ray; it cannot go with --executor local",
                "ray_address",
                self.address,
            )

    def describe(self) -> str:
        if self.kind == "local":
            return "this process" if self.workers == 1 else f"{self.workers} local worker processes"
        return f"{self.workers} Ray actor(s) on " + (self.address or "a local Ray instance")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def make_executor(executor: str = "auto", workers: int = 1, address: str = "") -> Executor:
    """The Executor of the flags `--executor` ("auto", "local", "ray"), `--workers` and
    `--ray-address` (else the environment's RAY_ADDRESS). "auto" = "ray" when an address is
    given, else "local"."""
    check_choice("executor", executor, ("auto", *EXECUTORS))
    if not address and executor != "local":
        address = os.environ.get(RAY_ADDRESS_ENV, "").strip()
    kind = ("ray" if address else "local") if executor == "auto" else executor
    return Executor(kind, workers, address)


def add_executor_flags(parser, what: str = "episodes") -> None:
    """Add `--workers`, `--executor` and `--ray-address` to an argparse (sub)parser."""
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes, or Ray actors with --executor ray (default 1)"
    )
    parser.add_argument(
        "--executor",
        default="auto",
        choices=("auto", *EXECUTORS),
        help=f"where the {what} run: local = worker processes of this machine, ray = Ray actors (the [scale] "
        "extra; a local Ray instance unless --ray-address); auto = ray when --ray-address or RAY_ADDRESS is "
        "set, else local (default auto)",
    )
    parser.add_argument(
        "--ray-address",
        default="",
        metavar="HOST:PORT",
        help="run on this Ray cluster (as `ray start --head` prints it; 'auto' = the one this machine belongs "
        "to) (default: RAY_ADDRESS, else none)",
    )


def executor_from_args(args) -> Executor:
    """The Executor of a command's parsed `add_executor_flags` flags; a Ray address that does not
    answer is an error now, before any work starts."""
    executor = make_executor(getattr(args, "executor", "auto"), args.workers, getattr(args, "ray_address", ""))
    if executor.address:
        check_reachable(executor.address)
    return executor


def imap(
    init: Callable,
    init_args: tuple,
    work: Callable,
    jobs: Iterable,
    executor: Executor,
    threads: int = 1,
    on_failure: Callable | None = None,
) -> Iterator:
    """Yield `work(job)` for every job, in completion order, each worker having run `init(*init_args)`
    once before its first job.

    Args:
        init, work: module-level functions (they are pickled by name).
        init_args: picklable; shipped once (Ray: one object in the object store).
        jobs: picklable jobs; every result must depend only on its job.
        executor: where they run.
        threads: CPU threads each worker computes with (what a Ray actor reserves).
        on_failure: `on_failure(job, reason)` gives the result of a job whose worker died more
            often than `executor.retries` (Ray); None = raise a WorkerDied error instead.
    """
    jobs = list(jobs)
    if not jobs:
        return
    if executor.kind == "ray":
        yield from _ray_imap(init, init_args, work, jobs, executor, threads, on_failure)
        return
    if executor.workers == 1:
        init(*init_args)
        for job in jobs:
            yield work(job)
        return
    yield from _local_imap(init, init_args, work, jobs, executor.workers)


def _local_imap(init, init_args, work, jobs: list, workers: int) -> Iterator:
    """`workers` spawned processes of this machine; a worker that dies ends the run with WorkerDied
    (what finished before is kept by the caller), where multiprocessing's Pool would wait forever."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # renderers and physics engines do not survive fork
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=init, initargs=init_args)
    try:
        futures = [pool.submit(work, job) for job in jobs]
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                raise WorkerDied(
                    "a local worker process died (killed, out of memory or crashed); the episodes that finished "
                    "are kept: rerun to resume, or use --executor ray, which reruns a dead worker's episode"
                ) from None
            yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class WorkerDied(FmbError, RuntimeError):
    """A job whose worker died more often than the executor retries it (no `on_failure` given), or
    a local worker process that died."""


def import_ray():
    """The `ray` module, or an error saying how to install it."""
    try:
        import ray
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "Ray is not installed: pip install -e .[scale] (or use --executor local)", name="ray"
        ) from e
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """ParameterError naming `address` unless something listens there ("host:port",
    "ray://host:port"; "auto" and "local" are left to Ray)."""
    if address in ("auto", "local"):
        return
    host_port = address.split("://", 1)[-1]
    host, sep, port = host_port.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ParameterError(
            f"--ray-address {address!r}: expected HOST:PORT (e.g. 10.0.0.1:6379, as `ray start --head` prints it), "
            "ray://HOST:PORT or auto",
            "ray_address",
            address,
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ParameterError(
            f"--ray-address {address!r}: no Ray cluster answers there ({e.strerror or e}); start one with "
            "`ray start --head` on the head node, or leave --ray-address out (and unset RAY_ADDRESS) to run here",
            "ray_address",
            address,
        ) from None


@contextlib.contextmanager
def ray_session(address: str = "", num_cpus: int = 0):
    """Connect to the Ray cluster at `address`, or start a local instance with `num_cpus` CPUs
    (0 = this machine's); yields the `ray` module. A session this call started is shut down at the
    end (and this process's stdout goes to stderr while it runs); one already running in this
    process (`ray.init` by the caller) is used and left running."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    import sys

    # Ray's driver prints its notices (a worker died, a task is retried) to stdout, where the
    # commands print their JSON: they go to stderr while the session runs.
    with contextlib.redirect_stdout(sys.stderr):
        yield from _ray_started(ray, address, num_cpus)


def _ray_started(ray, address: str, num_cpus: int):
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
    if address:
        check_reachable(address)
        quiet.pop("include_dashboard")  # the cluster's head decides
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as e:
            raise ParameterError(
                f"--ray-address {address!r}: could not join the Ray cluster there: {e}", "ray_address", address
            ) from None
    else:
        from fmb_core.threads import usable_cores

        # "local": a new instance, even where RAY_ADDRESS names a cluster. Its workers run at the
        # command's own priority (Ray's default lowers theirs to nice 15, which starves them beside
        # any other work on the machine, e.g. another test process).
        ray.init(
            address="local", num_cpus=max(num_cpus, usable_cores()), _system_config={"worker_niceness": 0}, **quiet
        )
    try:
        yield ray
    finally:
        ray.shutdown()


class RolloutActor:
    """A Ray actor: runs `init(*init_args)` once, then `work(job)` per call (warm state between).
    `shipped` holds the object reference of `init_args` (inside a list: Ray passes the reference,
    and each actor reads the one object)."""

    def __init__(self, init: Callable, shipped: list):
        import ray

        init(*ray.get(shipped[0]))

    def run(self, work: Callable, job):
        return work(job)

    def pid(self) -> int:
        return os.getpid()


def _ray_imap(init, init_args, work, jobs, executor: Executor, threads: int, on_failure) -> Iterator:
    from collections import deque

    with ray_session(executor.address, executor.workers * threads) as ray:
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError

        died = (ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError)
        shipped = ray.put(init_args)  # once: every actor reads the same object (`ray.get` per node)
        # Ray neither restarts actors nor retries their calls here: a dead actor is replaced by a
        # fresh one and its episode handed to it, so that what a death costs is counted per episode.
        actor_class = ray.remote(RolloutActor).options(num_cpus=threads, max_restarts=0, max_task_retries=0)
        pending = deque((job, 0) for job in jobs)  # (job, deaths so far)
        running: dict = {}  # object ref -> (actor, job, deaths)

        def submit(actor) -> None:
            job, deaths = pending.popleft()
            running[actor.run.remote(work, job)] = (actor, job, deaths)

        actors = []
        try:
            for _ in range(min(executor.workers, len(jobs))):
                actors.append(actor_class.remote(init, [shipped]))
                submit(actors[-1])
            while running:
                (ref,), _ = ray.wait(list(running), num_returns=1)
                actor, job, deaths = running.pop(ref)
                result = None
                try:
                    result = ray.get(ref)
                except died as e:
                    ray.kill(actor, no_restart=True)
                    actor = actor_class.remote(init, [shipped])  # a fresh one for the rest
                    actors.append(actor)
                    if deaths < executor.retries:
                        pending.appendleft((job, deaths + 1))  # the lost episode, first in line
                        submit(actor)
                        continue
                    if on_failure is None:
                        raise WorkerDied(f"job {job!r}: its worker died {deaths + 1} times: {e}") from None
                    result = on_failure(job, f"worker died {deaths + 1} times: {type(e).__name__}")
                except ray.exceptions.RayTaskError as e:
                    raise e.as_instanceof_cause() from None  # the episode's own error, as a local run raises it
                if pending:
                    submit(actor)
                yield result
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)


# -- stage graphs ---------------------------------------------------------------------------------
# A study (the ablation) is a graph of stages (trainings, collections, evaluation cells) that share
# files in one folder: each stage reads what its dependencies wrote, and finds its own output there
# when a rerun reaches it (it then returns at once). `run_stages` runs the graph in this process, in
# order, or as Ray tasks, each started when its dependencies are done, so that independent stages
# run at once on the cluster's nodes. On a cluster the folder must be one every node sees.

PIPELINES = ("serial", "ray")
"""How a stage graph runs: in this process, one stage at a time, or as Ray tasks."""


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a study.

    Attributes:
        name: unique in its graph, e.g. "train/plain" or "eval/implicit/seen".
        run: a picklable callable without arguments (a module-level function or a
            functools.partial of one); its return value must be picklable and small.
        deps: names of the stages that must finish before this one starts (all earlier in the list).
        cpus, gpus: what the stage reserves as a Ray task.
    """

    name: str
    run: Callable[[], object]
    deps: tuple[str, ...] = ()
    cpus: float = 1.0
    gpus: float = 0.0


class StageFailed(FmbError, RuntimeError):
    """A stage of a graph raised: names it; the stages that finished keep their output."""


def _timed(run: Callable[[], object], *_deps_done) -> dict:
    """Run one stage; the finished dependencies' results arrive as arguments only to order it."""
    import time

    start = time.time()
    result = run()
    return {"result": result, "start": start, "end": time.time(), "host": socket.gethostname(), "pid": os.getpid()}


def check_stages(stages: list[Stage]) -> None:
    """ParameterError unless the names are unique and every dependency is an earlier stage."""
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            raise ParameterError(f"stage {stage.name!r} appears twice")
        missing = [d for d in stage.deps if d not in seen]
        if missing:
            raise ParameterError(f"stage {stage.name!r} depends on {', '.join(missing)}, not an earlier stage")
        seen.add(stage.name)


def run_stages(
    stages: list[Stage], pipeline: str = "serial", address: str = "", log: Callable[[str], None] | None = None
) -> dict[str, dict]:
    """Run a stage graph; returns {name: {"result", "start", "end", "host", "pid"}} (times in s
    since the epoch) for every stage, in the graph's order.

    Args:
        pipeline: "serial" (this process, in list order) or "ray" (one Ray task per stage, on the
            cluster at `address` or on a local instance started for the run).
        log: called with a line as each stage finishes.

    Raises:
        StageFailed: naming the first stage that raised (Ray: the others still running are
            cancelled); what finished before keeps its files.
    """
    check_choice("pipeline", pipeline, PIPELINES)
    check_stages(stages)
    log = log or (lambda line: None)
    done: dict[str, dict] = {}
    if pipeline == "serial":
        for stage in stages:
            try:
                done[stage.name] = _timed(stage.run)
            except FmbError:
                raise
            except Exception as e:
                raise StageFailed(f"stage {stage.name} failed: {type(e).__name__}: {e}") from e
            log(_finished(stage.name, done[stage.name]))
        return done
    with ray_session(address) as ray:
        task = ray.remote(_timed)
        refs: dict[str, object] = {}
        for stage in stages:  # dependencies first: their references order the tasks
            options = {"num_cpus": stage.cpus, "num_gpus": stage.gpus, "max_retries": 0, "name": stage.name}
            refs[stage.name] = task.options(**options).remote(stage.run, *(refs[d] for d in stage.deps))
        names = {ref: name for name, ref in refs.items()}
        pending = list(refs.values())
        try:
            while pending:
                (ref,), pending = ray.wait(pending, num_returns=1)
                try:
                    done[names[ref]] = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if isinstance(e.cause, BaseException) else e.as_instanceof_cause()
                    if isinstance(cause, FmbError):
                        raise cause from None
                    # the remote traceback stays attached, as the serial run's does
                    raise StageFailed(f"stage {names[ref]} failed: {type(cause).__name__}: {cause}") from e
                log(_finished(names[ref], done[names[ref]]))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    return {stage.name: done[stage.name] for stage in stages}


def _finished(name: str, record: dict) -> str:
    return f"{name} done in {record['end'] - record['start']:.1f} s ({record['host']}, pid {record['pid']})"
