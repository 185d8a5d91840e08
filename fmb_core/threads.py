"""Thread budgets: how many CPU threads a process of the stack computes with, chosen by the stack.

    budget = configure("training", workers=1)        # plan, apply, log; before the first tensor op
    budget.threads                                     # -> 2 on an idle 2-core machine

Every process that runs torch (training, evaluation and collection workers, the skill server's
inference, perception) takes a share of the machine's *usable* cores (`os.sched_getaffinity`,
divided among the `workers` sibling processes it belongs to) and sets torch's intra-op threads
and the OpenMP / BLAS / Mesa thread pools to it. Left alone, every process starts one thread per
core; two workers on two cores, or one policy beside a simulator, then wait in every small
parallel region for a descheduled thread. Measured on a 2-core machine (`fmb bench load`;
docs/results/2026-12-02-thread-budget.md): one `small` decision took the same ~45 ms on one
thread as on two when the machine was idle, and 45 ms against 170-270 ms beside a process that
keeps one core busy; a training step was 1.3x faster on two threads idle and 2.3x slower loaded.

So the rules (`plan_threads`, a pure function):

    workload     threads                   why
    inference    1                         one decision is a chain of small ops: no speedup idle,
                                           4-5x faster under load; a priority set on the
                                           inference thread then covers all of its compute
    rollout      1                         an environment and a policy per worker (the same)
    training     share = cores // workers  big batches parallelise; `ThreadTuner` drops to
                                           fewer threads while that is faster (a loaded machine)
    perception   share                     open3d's registration parallelises over points

`--threads N` (the CLI) or the `threads` parameter (ROS nodes) overrides the rule, then the
environment variable `FMB_THREADS`; 0 means "the rule". The OpenMP / BLAS environment variables
are written by `apply_threads` (so that libraries loaded later and child processes start with the
budget); set the override instead of them.

This module imports no torch (the ground layer): it configures torch when it is already imported,
and the environment variables it writes configure a torch imported afterwards.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
from collections.abc import Callable

from fmb_core.errors import ParameterError, check_choice, check_range

WORKLOADS = ("inference", "rollout", "training", "perception")
"""Kinds of process, each with its own rule (module docstring)."""

ENV_OVERRIDE = "FMB_THREADS"
"""Environment variable that overrides the rule for every process started with it (0 = the rule)."""

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",  # torch's ATen OpenMP pool, open3d
    "MKL_NUM_THREADS",  # torch's MKL
    "OPENBLAS_NUM_THREADS",  # numpy / scipy
    "NUMEXPR_NUM_THREADS",
    "LP_NUM_THREADS",  # Mesa llvmpipe: MuJoCo's EGL rendering on a CPU
)
"""Environment variables `apply_threads` sets to the budget."""

MAX_THREADS = 1024


@dataclasses.dataclass(frozen=True)
class ThreadBudget:
    """The threads one process computes with.

    Attributes:
        threads: intra-op threads (torch, OpenMP, BLAS, llvmpipe) of this process.
        interop: torch inter-op threads (torch.jit.fork; 1 is enough for every workload here).
        cores: usable cores of the machine (the process's CPU affinity).
        workers: sibling processes sharing those cores (this one included).
        workload: one of WORKLOADS.
        source: "rule", "threads" (the flag or parameter) or "FMB_THREADS".
    """

    threads: int
    interop: int
    cores: int
    workers: int
    workload: str
    source: str

    def describe(self) -> str:
        """One line for logs, e.g. 'threads 1 (inference; 2 usable cores, 1 worker; rule)'."""
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        how = {"rule": "the rule", "threads": "set by --threads/threads", ENV_OVERRIDE: f"set by {ENV_OVERRIDE}"}
        return (
            f"threads {self.threads} ({self.workload}; {self.cores} usable core{'s' if self.cores != 1 else ''}, "
            f"{workers}; {how.get(self.source, self.source)})"
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (taskset, cgroups cpusets), else the count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def env_override(environ: dict | None = None) -> int:
    """The FMB_THREADS override (0 = none); a malformed value is an error naming the variable."""
    raw = (os.environ if environ is None else environ).get(ENV_OVERRIDE, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ParameterError(f"{ENV_OVERRIDE}={raw!r} must be a whole number of threads (0 = automatic)") from None
    return int(check_range(ENV_OVERRIDE, value, 0, MAX_THREADS))


def plan_threads(workload: str, cores: int, workers: int = 1, override: int = 0, env: int = 0) -> ThreadBudget:
    """The budget of one process (pure: the module docstring's table).

    Args:
        workload: one of WORKLOADS.
        cores: usable cores of the machine (>= 1).
        workers: sibling processes sharing them, this one included (>= 1).
        override: threads set by the flag / parameter (0 = none); wins over everything.
        env: threads set by FMB_THREADS (0 = none); wins over the rule.
    """
    check_choice("workload", workload, WORKLOADS)
    cores = int(check_range("cores", cores, 1, MAX_THREADS))
    workers = int(check_range("workers", workers, 1, MAX_THREADS))
    override = int(check_range("threads", override, 0, MAX_THREADS))
    env = int(check_range(ENV_OVERRIDE, env, 0, MAX_THREADS))
    if override:
        threads, source = override, "threads"
    elif env:
        threads, source = env, ENV_OVERRIDE
    elif workload in ("inference", "rollout"):
        threads, source = 1, "rule"
    else:
        threads, source = max(1, cores // workers), "rule"
    return ThreadBudget(threads, 1, cores, workers, workload, source)


def apply_threads(budget: ThreadBudget) -> ThreadBudget:
    """Put `budget` into effect in this process: the thread variables (for libraries loaded later
    and for child processes), the pools of libraries already loaded (threadpoolctl), and torch's
    intra- and inter-op threads when torch is imported. Returns `budget`."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(budget.threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it only libraries loaded from now on follow the budget
        pass
    else:
        threadpool_limits(budget.threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(budget.threads)
        try:
            torch.set_num_interop_threads(budget.interop)
        except RuntimeError:  # only allowed before the first inter-op work; the default is harmless
            pass
    return budget


def configure(
    workload: str, workers: int = 1, threads: int = 0, log: Callable[[str], None] | None = None
) -> ThreadBudget:
    """Plan this process's budget (usable cores, FMB_THREADS, `threads`), apply it and log it."""
    budget = plan_threads(workload, usable_cores(), workers, threads, env_override())
    apply_threads(budget)
    if log is not None:
        log(budget.describe())
    return budget


def add_threads_flag(parser, workload: str) -> None:
    """Add the `--threads` override to an argparse (sub)parser whose processes run `workload`."""
    check_choice("workload", workload, WORKLOADS)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help=f"CPU threads per process (default 0: the stack's {workload} budget, see fmb_core.threads; "
        f"{ENV_OVERRIDE} also sets it)",
    )


def torch_threads() -> int:
    """Intra-op threads torch runs with now (0 when torch is not imported)."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else 0


def raise_thread_priority(nice: int = -10, realtime: int = 0) -> str:
    """Raise the priority of the calling thread (Linux: per thread); returns what took effect.

    Args:
        nice: the thread's nice value (-20 highest .. 19 lowest; 0 = leave it). Below 0 needs
            CAP_SYS_NICE (root) or an RLIMIT_NICE allowance (limits.conf `rtprio`/`nice`).
        realtime: SCHED_FIFO priority 1-99 instead (0 = off): the thread then runs before every
            normal thread whenever it is ready; needs CAP_SYS_NICE or RLIMIT_RTPRIO.

    Never raises for a refused request: the thread keeps its priority and the text says why.
    """
    check_range("nice", nice, -20, 19)
    check_range("realtime", realtime, 0, 99)
    if not sys.platform.startswith("linux"):
        return f"normal priority (per-thread priorities are Linux only, not {sys.platform})"
    import threading

    tid = threading.get_native_id()
    try:
        if realtime:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(int(realtime)))
            return f"SCHED_FIFO priority {int(realtime)}"
        if nice:
            os.setpriority(os.PRIO_PROCESS, tid, int(nice))
            return f"nice {int(nice)}"
    except OSError as e:
        wanted = f"SCHED_FIFO {int(realtime)}" if realtime else f"nice {int(nice)}"
        return f"normal priority ({wanted} refused: {e.strerror}; needs CAP_SYS_NICE or an rtprio/nice limit)"
    return "normal priority"


class ThreadTuner:
    """Keeps a loop on the thread count that runs it fastest, re-measured as the machine's load changes.

        tuner = ThreadTuner(budget.threads, torch.set_num_threads)
        for step in ...:
            t0 = time.perf_counter(); train_step(); tuner.record(time.perf_counter() - t0)

    It measures every candidate count (1, 2, 4, ... up to `max_threads`, and `max_threads`) for
    `probe` steps (after one unmeasured step each, as a new count warms its pool up), keeps the one
    with the lowest median step time for `hold` steps, then measures again. With `max_threads` 1
    it never changes anything.

    Args:
        max_threads: the budget's threads (the most it tries).
        set_threads: applies a thread count (torch.set_num_threads).
        probe: measured steps per candidate per round.
        hold: steps run on the chosen count between rounds.
    """

    def __init__(self, max_threads: int, set_threads: Callable[[int], None], probe: int = 5, hold: int = 200):
        check_range("max_threads", max_threads, 1, MAX_THREADS)
        check_range("probe", probe, 1, 1000)
        check_range("hold", hold, 0, 1_000_000)
        counts = {int(max_threads)}
        c = 1
        while c < max_threads:
            counts.add(c)
            c *= 2
        self.candidates = sorted(counts)
        self.set_threads = set_threads
        self.probe, self.hold = int(probe), int(hold)
        self.choices: list[int] = []  # the count chosen at each round, for the run's summary
        self.current = self.candidates[-1]
        self._round: list[int] = [] if len(self.candidates) == 1 else list(self.candidates)
        self._times: dict[int, list[float]] = {}
        self._skip = 1
        self._held = 0
        if self._round:
            self._switch(self._round[0])

    def _switch(self, threads: int) -> None:
        self.current = threads
        self.set_threads(threads)
        self._skip = 1

    def record(self, seconds: float) -> None:
        """Report one step's wall time [s]; may change the thread count for the next steps."""
        if not self._round:  # holding the choice
            self._held += 1
            if len(self.candidates) > 1 and self._held >= self.hold:
                self._round, self._times, self._held = list(self.candidates), {}, 0
                self._switch(self._round[0])
            return
        if self._skip:
            self._skip -= 1
            return
        times = self._times.setdefault(self.current, [])
        times.append(float(seconds))
        if len(times) < self.probe:
            return
        self._round.pop(0)
        if self._round:
            self._switch(self._round[0])
            return
        best = min(self._times, key=lambda c: statistics.median(self._times[c]))
        self.choices.append(best)
        self._switch(best)
        self._skip = 0
