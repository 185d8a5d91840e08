"""The recorder's core: messages in, episode steps out, at the control rate (ROS-free).

`fmb data import-bag` replays a bag through it and the `fmb_recorder` node feeds it live, so both
align the streams by one rule (`sim.recording.align`: nearest-before within a tolerance)::

    rec = EpisodeRecorder(TopicMap(cameras=("side_1",)), rate=10.0, tolerance=0.15)
    rec.add(stream.key, t, stream.convert(msg))    # every message, t [s] its receive time
    rec.tick(t)                                    # every control tick [s]
    steps = rec.finish()                           # Steps: data over all ticks, bad, stale per topic

At tick k the observation streams are sampled at t_k; the step's action is completed at tick k+1
from the commands at t_k+1 (what the controller was told during the step), or at `finish` from the
newest commands at or before t_k + 1/rate. Ticks before every stream has spoken are skipped (the
recording has not started); afterwards a stream without a message within `tolerance` before a tick
is stale there: the step is bad, counted per topic, and never filled with older data.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np

from fmb_core.errors import check_range
from sim import observation as ob
from sim import recording


class Steps(NamedTuple):
    """A recording's steps.

    Attributes:
        data: episode arrays (T, ...) over every tick; rows of bad steps are zeros (never store them).
        bad: (T,) bool, steps where a stream was stale.
        stale: {topic: number of steps where it was stale}.
        ticks: (T,) tick times [s].
    """

    data: dict[str, np.ndarray]
    bad: np.ndarray
    stale: dict[str, int]
    ticks: np.ndarray

    def episodes(self, min_steps: int = 1) -> list[tuple[int, int]]:
        """[start, stop) runs of good steps, each at least `min_steps` long."""
        return recording.valid_runs(self.bad, min_steps)


_COMMANDS = (recording.COMMAND, recording.GRIPPER_COMMAND)


class EpisodeRecorder:
    """See module docstring. `topics`: a `sim.recording.TopicMap`; `rate` [Hz]; `tolerance` [s]."""

    def __init__(self, topics: recording.TopicMap, rate: float = 10.0, tolerance: float = 0.15):
        self.rate = check_range("rate", rate, 0.1, 1000.0, unit="Hz")
        self.tolerance = check_range("tolerance", tolerance, 0.0, 60.0, unit="ms", scale=1e3)
        self.streams = {s.key: s for s in topics.streams()}
        self._times: dict[str, list[float]] = {k: [] for k in self.streams}
        self._values: dict[str, list] = {k: [] for k in self.streams}
        self._rows: list[dict | None] = []  # per tick: observation values, or None where stale
        self._actions: list[np.ndarray | None] = []
        self._ticks: list[float] = []
        self._stale = dict.fromkeys(self.streams, 0)

    def add(self, key: str, t: float, value) -> None:
        """One converted message of stream `key` received at `t` [s] (ascending per stream)."""
        times = self._times[key]
        i = bisect.bisect_right(times, t)
        times.insert(i, t)
        self._values[key].insert(i, np.asarray(value))
        if len(times) > 4096:  # keep a window: recordings run for minutes
            cut = bisect.bisect_left(times, t - self.tolerance - 10.0 / self.rate) - 1
            if cut > 0:
                del times[:cut], self._values[key][:cut]

    @property
    def started(self) -> bool:
        """Whether every stream has spoken (ticks before that are skipped)."""
        return all(self._times.values())

    @property
    def steps(self) -> int:
        """Ticks recorded so far."""
        return len(self._ticks)

    def waiting(self) -> list[str]:
        """Topics that have not spoken yet (ticks wait for all)."""
        return sorted(self.streams[k].topic for k, times in self._times.items() if not times)

    def stale_counts(self) -> dict[str, int]:
        """{topic: steps where it was stale so far}."""
        return {self.streams[k].topic: n for k, n in self._stale.items() if n}

    def tick(self, t: float) -> bool:
        """Sample the observations at tick `t` [s] and complete the previous step's action; False
        (nothing recorded) before every stream has spoken."""
        if not self.started:
            return False
        if self._ticks:
            self._actions[-1] = self._action(len(self._ticks) - 1, t)
        row, stale = {}, False
        for key in self.streams:
            if key in _COMMANDS:
                continue
            value = self._sample(key, t)
            if value is None:
                stale = True
            else:
                row[key] = value
        self._ticks.append(t)
        self._rows.append(None if stale else row)
        self._actions.append(None)
        return True

    def finish(self) -> Steps:
        """Complete the last step (commands at or before its tick + 1/rate) and return the steps."""
        if self._ticks and self._actions[-1] is None:
            self._actions[-1] = self._action(len(self._ticks) - 1, self._ticks[-1] + 1.0 / self.rate)
        n = len(self._ticks)
        bad = np.array([r is None or a is None for r, a in zip(self._rows, self._actions)], bool)
        data: dict[str, np.ndarray] = {}
        template = next((r for r in self._rows if r is not None), None)
        if template is not None:
            for key, value in template.items():
                rows = np.zeros((n, *value.shape), value.dtype)
                for i, r in enumerate(self._rows):
                    if r is not None and not bad[i]:
                        rows[i] = r[key]
                data[key] = rows
            joints = data.pop(ob.store_key(ob.Q))
            data[ob.store_key(ob.Q)], data[ob.store_key(ob.DQ)] = joints[:, :7], joints[:, 7:]
            data = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in data.items()}
        action = np.zeros((n, 7), np.float32)
        for i, a in enumerate(self._actions):
            if a is not None and not bad[i]:
                action[i] = a
        data["action"] = action
        return Steps(data, bad, self.stale_counts(), np.array(self._ticks))

    def _sample(self, key: str, t: float):
        """The value of stream `key` at `t` by `recording.align`, or None (and counted) when stale."""
        times = self._times[key]
        hi = bisect.bisect_right(times, t)
        index, stale = recording.align(np.array(times[max(hi - 1, 0) : hi]), np.array([t]), self.tolerance)
        if stale[0]:
            self._stale[key] += 1
            return None
        return self._values[key][hi - 1]

    def _action(self, step: int, t: float) -> np.ndarray | None:
        """Step `step`'s action from the commands at `t` and the pose measured at its tick."""
        row = self._rows[step]
        target, opening = self._sample(recording.COMMAND, t), self._sample(recording.GRIPPER_COMMAND, t)
        if row is None or target is None or opening is None:
            return None
        measured = row[ob.store_key(ob.TCP_POSE)]
        return recording.command_actions(measured[None], target[None], opening.reshape(1))[0]
