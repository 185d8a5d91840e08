"""`AsyncPolicyRunner`: a `policies.runtime.runner.PolicyRunner` whose decisions run in a background thread.

    runner = AsyncPolicyRunner(PolicyRunner(policy), lead=3)
    runner.reset(world)
    action = runner.act(world)        # (7,) action, or None: the chunk is late, hold this tick

The synchronous runner decides a chunk inside `act` when its queue is empty, so the tick that
re-plans carries the whole inference (about a period for the `small` preset on a loaded CPU). Here,
as in Diffusion Policy's real-robot loop, the next chunk is computed while the current one
executes, and `act` only pops actions:

    step       t-lead ........ t-1 | t ........
    queue      lead actions left   | the new chunk, from the row of step t
    inference  started at t-lead (history up to obs(t-lead)) -> done before step t

At step s, when at most `lead` actions are queued and no decision is running, a decision starts in
the worker thread from the history up to obs(s), with the next seed of `runner.rng` (the same seed
sequence as the synchronous runner). Its chunk's row `first = obs_horizon - 1` is the action for step
s (as in `PolicyRunner`), so when the queue runs out at step t the new chunk is used from row
`first + (t - s)`: actions planned for steps already past are dropped, never replayed late.
If the chunk is not ready when the queue is empty, `act` returns None (the caller holds the last
pose) and `late_chunks` counts it once per late chunk (`held_ticks` counts the ticks); the first
chunk of a run is not counted late (there was nothing to prefetch from).

`act` waits for a running decision at most `wait` [s] (default 0: never). With `lead=0` and a `wait`
longer than a decision, each decision starts from the current step and is waited for, which is the
synchronous runner's behaviour exactly (same actions in the same order for the same seeds).

With `adaptive=True` the lead follows the measured decision time: after every decision it becomes
`ceil(1.25 * slowest of the last 8 decisions / period)`, never below the configured `lead` (the
floor) nor above `pred_horizon - obs_horizon`, so a chunk stays ready before it is needed when the
machine gets busy (a decision of 0.45 s at 10 Hz starts 6 actions ahead). `lead_now` is the lead in
use and `max_lead` the highest it reached.

The worker thread asks for a higher priority than the rest of the process when it starts
(`nice`, or SCHED_FIFO with `realtime`; `fmb_core.threads.raise_thread_priority`); `priority` says what
took effect (a refusal leaves normal priority and says why). With the inference thread budget of
one intra-op thread (`fmb_core.threads`), all of a decision's compute runs in that thread.

Only receding-horizon runners (`ensemble == 0`) are supported: ensembling re-plans every step.
Torch releases the GIL inside its operators, so the caller's thread (a ROS executor) keeps running
while the worker infers; between operators the worker holds it, and with Python's default switch
interval (5 ms) every handover to the executor waits that long: the skill server therefore
shortens the interval while a policy runs (`gil_switch_interval`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import math
import time

import numpy as np

from fmb_core.errors import ParameterError, check_range
from fmb_core.threads import raise_thread_priority

LEAD_MARGIN = 1.25
"""Adaptive lead: the slowest recent decision times this must fit into the lead's ticks."""


@dataclasses.dataclass(frozen=True)
class AsyncConfig:
    """How a skill runs a policy asynchronously (the skill server's inference_* parameters).

    Attributes:
        lead: actions left in the queue when the next decision starts; with `adaptive`, the floor.
        adaptive: the lead follows the measured decision time (module docstring).
        period: control period [s] (1 / the skill's rate).
        nice: nice value of the inference thread (-20 .. 19; 0 = leave it).
        realtime: SCHED_FIFO priority of the inference thread instead (1-99; 0 = off).
    """

    lead: int = 3
    adaptive: bool = True
    period: float = 0.1
    nice: int = -10
    realtime: int = 0

    def __post_init__(self):
        check_range("inference_lead", self.lead, 0, 64)
        check_range("period", self.period, 1e-3, 10.0, unit="s")
        check_range("inference_nice", self.nice, -20, 19)
        check_range("inference_realtime", self.realtime, 0, 99)


class AsyncPolicyRunner:
    """See module docstring.

    Args:
        runner: a `PolicyRunner` (receding horizon); its policy, seed generator, history, queue,
            selector and action horizon are used, its `act` is not.
        lead: actions left in the queue when the next decision starts (0 = when it is empty);
            with `adaptive`, the lowest lead.
        wait: longest time `act` waits for a decision that is due [s] (0 = never wait).
        adaptive: let the lead follow the measured decision time (module docstring).
        period: control period the actions are executed at [s] (adaptive lead only).
        nice, realtime: priority the worker thread asks for (fmb_core.threads.raise_thread_priority;
            0 and 0 = leave it).
    """

    def __init__(
        self,
        runner,
        lead: int = 3,
        wait: float = 0.0,
        *,
        adaptive: bool = False,
        period: float = 0.1,
        nice: int = 0,
        realtime: int = 0,
    ):
        if runner.ensemble > 0:
            raise ParameterError("asynchronous inference needs a receding-horizon runner (ensemble 0)")
        c = runner.policy.config
        self.lead_limit = c.pred_horizon - c.obs_horizon
        check_range("lead", lead, 0, self.lead_limit)
        self.wait = check_range("wait", wait, 0.0, 60.0, unit="s")
        self.period = check_range("period", period, 1e-3, 10.0, unit="s")
        check_range("nice", nice, -20, 19)
        check_range("realtime", realtime, 0, 99)
        self.lead = int(lead)
        self.lead_now = self.max_lead = self.lead
        self.adaptive = bool(adaptive)
        self.runner = runner
        self.first = c.obs_horizon - 1
        self.priority = "normal priority"
        self._recent: collections.deque[float] = collections.deque(maxlen=8)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="fmb_inference",
            initializer=self._init_worker,
            initargs=(int(nice), int(realtime)),
        )
        if nice or realtime:
            self._pool.submit(lambda: None).result()  # start the thread now: `priority` is known at once
        self.late_chunks = 0
        self.held_ticks = 0
        self.last_decision_time = float("nan")  # [s] wall time of the newest finished decision
        self._pending: tuple[concurrent.futures.Future, int] | None = None
        self._t = 0
        self._late = False
        self._chunks = 0  # chunks taken in this run

    # -- the PolicyRunner surface a skill uses -----------------------------------------------------
    @property
    def policy(self):
        return self.runner.policy

    @property
    def candidates(self):
        return getattr(self.runner, "candidates", None)

    @property
    def subgoals(self):
        """The runner's GravMap sub-goal tracker, or None."""
        return self.runner.subgoals

    @property
    def goal_key(self) -> str:
        return self.runner.goal_key

    @property
    def needs_subgoals(self) -> bool:
        return self.runner.needs_subgoals

    @property
    def goal_pose(self):
        """The goal the runner conditions on (None without one)."""
        return self.runner.goal_pose

    @property
    def decisions(self) -> int:
        return self.runner.decisions

    @property
    def planning_since(self) -> int | None:
        """The step (of this run) the decision in flight started at, or None when none is."""
        return None if self._pending is None else self._pending[1]

    @property
    def chunk_ready(self) -> bool:
        """The decision in flight has finished (its chunk is taken when the queue runs out)."""
        return self._pending is not None and self._pending[0].done()

    def reset(self, env, goal=None, subgoals=None) -> None:
        """Start a run: the runner's reset (with the goal and sub-goals, see PolicyRunner.reset); a
        decision still running is abandoned (its chunk is dropped)."""
        self.runner.reset(env, goal=goal, subgoals=subgoals)
        self._pending = None
        self._t = 0
        self._late = False
        self._chunks = 0

    def _init_worker(self, nice: int, realtime: int) -> None:
        if nice or realtime:
            self.priority = raise_thread_priority(nice, realtime)

    def close(self) -> None:
        """Stop the worker thread (after the decision in flight, if any)."""
        self._pending = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def act(self, env) -> np.ndarray | None:
        """The (7,) action for this step (gripper binarised), or None when the chunk is late."""
        r = self.runner
        r.observe(env)
        t, self._t = self._t, self._t + 1
        if len(r.queue) <= self.lead_now and self._pending is None:
            self._start(t)
        if not r.queue and not self._take(t):
            if not self._late and self._chunks > 0:
                self.late_chunks += 1
            self._late = True
            self.held_ticks += 1
            return None
        self._late = False
        action = np.asarray(r.queue.popleft(), np.float64).copy()
        action[6] = 1.0 if action[6] >= 0.5 else 0.0
        return action

    # -- the worker ------------------------------------------------------------------------------
    def _start(self, step: int) -> None:
        r = self.runner
        history = list(r.history)  # a snapshot: the caller keeps appending
        seed = int(r.rng.integers(2**31))
        future = self._pool.submit(self._decide, history, seed, r.skill, r.family)
        self._pending = (future, step)

    def _decide(self, history: list, seed: int, skill: str, family: str) -> np.ndarray:
        """Runs in the worker: the chosen (Tp, A) chunk for `history` (as `PolicyRunner` decides)."""
        r = self.runner
        began = time.perf_counter()
        chunks = r.policy.predict(
            history,
            r.num_samples,
            seed=seed,
            skill=skill,
            family=family,
            guidance=r.guidance,
            temperature=r.temperature,
        )
        chunk = r.choose(history, chunks)
        self.last_decision_time = time.perf_counter() - began
        self._recent.append(self.last_decision_time)
        if self.adaptive:
            need = math.ceil(LEAD_MARGIN * max(self._recent) / self.period)
            self.lead_now = int(min(max(self.lead, need), self.lead_limit))
            self.max_lead = max(self.max_lead, self.lead_now)
        return chunk

    def _take(self, step: int) -> bool:
        """Fill the queue from the pending decision if it is done (waiting up to `wait`); False if not."""
        if self._pending is None:
            return False
        future, started = self._pending
        try:
            chunk = future.result(timeout=self.wait)
        except concurrent.futures.TimeoutError:
            return False
        self._pending = None
        self.runner.decisions += 1
        self._chunks += 1
        row = self.first + (step - started)  # the chunk's action for this step
        rows = chunk[row : row + self.runner.action_horizon]
        if len(rows) == 0:  # so late that the whole chunk is past: plan again from now
            self._start(step)
            return self._take(step)
        self.runner.queue.extend(rows)
        return True
