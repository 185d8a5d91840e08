"""The held peg's pose in the hand between `fmb_perception` and the skill servers, without ROS.

    hand = HandHistory()                                  # fmb_perception: the measured hand, stamped
    hand.add_tcp(stamp, tcp_pose); hand.add_gripper(stamp, opening)
    tcp, opening = hand.at(cloud_stamp, tolerance)        # the hand when the cloud was taken (or None)
    if holding(opening): held = estimator.in_hand(points, tcp, opening, views=views)   # -> ~/held_peg, T_tcp_peg

    estimates = HeldPegEstimates(max_age)                 # a skill server: the newest estimate it received
    estimates.on_estimate(pose, stamp); estimates.on_fingers(opening, stamp)
    choice = in_hand_choice(config, info, estimates.recent(now))   # the in-hand pose of a tcp_goal

    wait = HeldPegWait(limit)                             # the task executor, before a held-peg stage's goal
    wait.on_estimate(stamp); wait.arm(stage_start)        # each estimate; a stage that holds_peg begins
    gate = wait.check(now)                                # each tick: send the goal once gate.go

`fmb eval --goals perceived` estimates the held peg in the hand on the cloud it builds the goal
from and picks the in-hand pose of a `tcp_goal` by `PerceivedGoalConfig.in_hand`
(`sim.perceived_goals.held_in_hand`: "checked" = the grasp command's, unless the cameras see the peg
held farther across the TCP axis or turned more than the tolerances from it). On ROS the estimate
is `fmb_perception`'s, made on every cloud taken while the fingers hold something (`holding`) with
the measured TCP pose and finger opening of the cloud's time, and published in the TCP frame; a
skill server keeps the newest one and takes it at a goal's start only while it is recent: stamped
after the fingers were last open (an estimate of an earlier grasp says nothing of this one) and at
most `max_age` before the goal. The choice itself is `held_in_hand`, the rule both paths share.
Perception takes seconds per estimate, so a goal sent as soon as the grasp ends would find none of
this grasp yet; the task executor therefore holds a held-peg stage's goal (`HeldPegWait`) until an
estimate of a cloud taken after the stage began has arrived, as `fmb eval` estimates on a cloud
rendered at the stage's start, or a bounded wait has run out (then the skill server says why it
took the command).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import NamedTuple

import numpy as np

from fmb_core.errors import ParameterError, check_range
from sim.panda import FINGER_SPEED, GRIPPER_OPEN
from sim.scene import PhysicsConfig

HOLDING_BELOW = GRIPPER_OPEN - FINGER_SPEED / PhysicsConfig().control_hz
"""Finger opening [m] below which the hand holds something: fully open (`sim.panda.GRIPPER_OPEN`,
80 mm) less what a finger travels in one 10 Hz control period (`sim.panda.FINGER_SPEED`), i.e.
70 mm. FMB's widest grasp is 65.5 mm (a lying double square L), a standing peg's 48 mm."""


def holding(opening: float) -> bool:
    """Whether a measured finger `opening` [m] is clearly below fully open (HOLDING_BELOW)."""
    return float(opening) < HOLDING_BELOW


class HandHistory:
    """The measured TCP poses and finger openings of the last `span` seconds, by stamp, so that
    a cloud is looked at with the hand as it was when the cloud was taken (a held peg's estimate
    is relative to the TCP: a hand that moved 1 cm since moves it 1 cm). Thread-safe (the
    subscriptions add while the estimate reads)."""

    def __init__(self, span: float = 5.0, size: int = 10_000):
        self.span = float(span)
        self._tcp: deque[tuple[float, np.ndarray]] = deque(maxlen=size)
        self._gripper: deque[tuple[float, float]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add_tcp(self, stamp: float, tcp_pose) -> None:
        """A measured TCP pose (7,) [m, xyzw], base frame, at `stamp` [s]."""
        self._add(self._tcp, float(stamp), np.asarray(tcp_pose, float).copy())

    def add_gripper(self, stamp: float, opening: float) -> None:
        """A measured finger opening [m] at `stamp` [s]."""
        self._add(self._gripper, float(stamp), float(opening))

    def at(self, stamp: float, tolerance: float) -> tuple[np.ndarray, float] | None:
        """(TCP pose (7,), finger opening [m]) measured nearest `stamp` [s], each at most
        `tolerance` [s] from it; None when either is not."""
        with self._lock:
            tcp, gripper = _nearest(self._tcp, stamp, tolerance), _nearest(self._gripper, stamp, tolerance)
        if tcp is None or gripper is None:
            return None
        return tcp.copy(), gripper

    def _add(self, items: deque, stamp: float, value) -> None:
        with self._lock:
            items.append((stamp, value))
            while items and items[0][0] < stamp - self.span:
                items.popleft()


def _nearest(items, stamp: float, tolerance: float):
    if not items:
        return None
    t, value = min(items, key=lambda item: abs(item[0] - stamp))
    return value if abs(t - stamp) <= tolerance else None


class InHandEstimate(NamedTuple):
    """What a skill server has of the cameras' held-peg estimate at a goal's start.

    Attributes:
        pose: (7,) T_tcp_peg [m, xyzw] (the peg in the TCP frame), or None when none is usable.
        age: how long before the goal the estimate's cloud was taken [s] (nan: none received).
        why: why none is usable ("" when `pose` is set).
    """

    pose: np.ndarray | None
    age: float
    why: str


class HeldPegEstimates:
    """The newest held-peg estimate a skill server received (`fmb_perception`'s `~/held_peg`) and
    when the fingers were last open; see module docstring.

    Args:
        max_age: an estimate whose cloud is older than this at a goal's start is not used [s].
    """

    def __init__(self, max_age: float):
        self.max_age = float(max_age)
        self.pose: np.ndarray | None = None
        self.stamp = math.nan
        self.opened_at = -math.inf
        """Stamp [s] of the newest finger opening that held nothing (HOLDING_BELOW or wider)."""

    def on_estimate(self, pose, stamp: float) -> None:
        """The held peg (7,) T_tcp_peg [m, xyzw] seen in the cloud of `stamp` [s]."""
        self.pose, self.stamp = np.asarray(pose, float).copy(), float(stamp)

    def on_fingers(self, opening: float, stamp: float) -> None:
        """A measured finger opening [m] at `stamp` [s]."""
        if not holding(opening):
            self.opened_at = max(self.opened_at, float(stamp))

    def recent(self, now: float) -> InHandEstimate:
        """The estimate as usable for a goal starting at `now` [s] (module docstring)."""
        if self.pose is None:
            return InHandEstimate(None, math.nan, "no held-peg estimate received")
        age = float(now) - self.stamp
        if self.stamp <= self.opened_at:
            why = f"the newest estimate ({age:.1f} s old) is from before the fingers last opened"
            return InHandEstimate(None, age, why)
        if age > self.max_age:
            why = f"the newest estimate is {age:.1f} s old (held_peg_max_age {self.max_age:g} s)"
            return InHandEstimate(None, age, why)
        return InHandEstimate(self.pose.copy(), age, "")


class InHandChoice(NamedTuple):
    """A `tcp_goal`'s in-hand pose and what a skill server reports of it.

    Attributes:
        pose: (7,) T_tcp_peg [m, xyzw] the goal is built with; None when the task facts have no
            grasp command (`sim.perceived_goals.policy_goal` then says so).
        source: "commanded grasp", "nominal grasp" or "estimated in hand" (`held_in_hand`).
        facts: status values: `in_hand_source`, `in_hand_estimate` (its age, or why none was used),
            and with both poses `in_hand_offset_mm`, `in_hand_angle_deg` (how far apart they are,
            `sim.perceived_goals.in_hand_disagreement`).
    """

    pose: np.ndarray | None
    source: str
    facts: dict


def in_hand_choice(config, info: dict, estimate: InHandEstimate | None) -> InHandChoice:
    """The in-hand pose of a `tcp_goal` by `config.in_hand` (a `PerceivedGoalConfig`) from the
    grasp command in the task facts `info` (`sim.perceived_goals.in_hand_pose`) and the cameras'
    `estimate` (None: no held-peg topic), as `fmb eval --goals perceived` chooses it
    (`sim.perceived_goals.held_in_hand`). ParameterError when `in_hand` is "estimated" and no
    estimate is usable, or the task facts name no known peg."""
    from sim.objects import peg_spec
    from sim.perceived_goals import held_in_hand, in_hand_disagreement, in_hand_pose

    commanded, commanded_source = in_hand_pose(info)
    estimated = estimate.pose if estimate is not None else None
    facts: dict = {}
    if estimate is not None:
        facts["in_hand_estimate"] = f"{estimate.age:.2f} s old" if estimated is not None else estimate.why
    if config.in_hand == "estimated" and estimated is None:
        why = estimate.why if estimate is not None else "no held_peg_topic"
        raise ParameterError(f"in_hand 'estimated': the held peg was not seen in the hand ({why})")
    if commanded is None:
        return InHandChoice(None, "", facts)
    spec = peg_spec(info.get("peg", ""))
    if spec is None:
        raise ParameterError(f"the task facts name no known peg part (peg: {info.get('peg')!r})")
    pose, source = held_in_hand(config, commanded, estimated, spec, commanded_source)
    if estimated is not None:
        offset, angle = in_hand_disagreement(commanded, estimated, spec)
        facts.update(in_hand_offset_mm=round(offset * 1e3, 2), in_hand_angle_deg=round(math.degrees(angle), 2))
    return InHandChoice(pose, source, {"in_hand_source": source, **facts})


def holds_peg(skill: str) -> bool:
    """Whether the goal of `skill`'s policy is built with the held peg's in-hand pose: the skill's
    goal (`sim.tasks.skill_goals.SKILL_GOALS`) is a `tcp_goal` (rotate, insert)."""
    from sim.tasks.skill_goals import SKILL_GOALS

    return SKILL_GOALS.get(skill) == "tcp_goal"


class HeldPegGate(NamedTuple):
    """Whether the task executor sends a held-peg stage's goal now (`HeldPegWait.check`).

    Attributes:
        go: send it now.
        waited: how long the goal has been held back so far [s].
        note: why it waits, what arrived after a wait, or that none did ("" when there was no wait).
        timed_out: it goes without an estimate that new: the wait's `limit` ran out.
    """

    go: bool
    waited: float
    note: str
    timed_out: bool = False


class HeldPegWait:
    """The task executor's wait before a held-peg stage's goal (`holds_peg`) for a held-peg estimate
    of a cloud taken after the stage began (after the previous stage ended: a grasp's, with the peg
    in the closed fingers), at most `limit` seconds from the first check; see module docstring. Once
    the gate opens, the wait is over for the rest of the stage (its retries do not wait again).

    Args:
        limit: the longest wait [s]; 0 = do not wait.
    """

    def __init__(self, limit: float):
        self.limit = float(check_range("held_peg_wait", limit, 0.0, 3600.0, unit="s"))
        self.stamp = -math.inf
        """Cloud stamp [s] of the newest estimate received."""
        self.since: float | None = None
        """The wanted estimate's cloud is taken at or after this [s]; None: nothing to wait for."""
        self.started: float | None = None
        """When the first check held the goal back [s]."""

    def on_estimate(self, stamp: float) -> None:
        """A held-peg estimate of the cloud of `stamp` [s] arrived."""
        self.stamp = max(self.stamp, float(stamp))

    def arm(self, since: float | None) -> None:
        """A stage begins at `since` [s] whose goal waits (None: one that does not)."""
        self.since, self.started = (None if since is None else float(since)), None

    @property
    def waiting(self) -> bool:
        """Whether a check has held a goal back and the gate has not opened since."""
        return self.since is not None and self.started is not None

    def check(self, now: float) -> HeldPegGate:
        """Whether the goal may go at `now` [s]; the first check starts the wait's clock."""
        if self.since is None or self.limit == 0.0:
            return HeldPegGate(True, 0.0, "")
        if self.started is None:
            self.started = float(now)
        waited, since = float(now) - self.started, self.since
        newest = "none received" if self.stamp == -math.inf else f"newest of {self.stamp:.1f} s"
        if self.stamp >= since:
            self.since = None
            if waited == 0.0:
                return HeldPegGate(True, 0.0, "")
            note = (
                f"a held-peg estimate of a cloud taken {self.stamp - since:.1f} s after the stage began "
                f"arrived after waiting {waited:.1f} s"
            )
            return HeldPegGate(True, waited, note)
        if waited >= self.limit:
            self.since = None
            note = (
                f"no held-peg estimate of a cloud taken after {since:.1f} s within held_peg_wait {self.limit:g} s "
                f"({newest}); the skill server takes the grasp command"
            )
            return HeldPegGate(True, waited, note, timed_out=True)
        note = f"waiting for a held-peg estimate of a cloud taken after {since:.1f} s ({newest})"
        return HeldPegGate(False, waited, note)
