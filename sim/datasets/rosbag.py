"""rosbag2 bags (MCAP or sqlite3) into an episode store, through `rosbags` (pure Python; no ROS install).

The topics and their conversion are `sim.recording`'s; a bag is replayed through the recorder's core
(`sim.recorder.EpisodeRecorder`, which the recorder node feeds live), so both align alike. Per bag:
ticks every 1/rate s from the moment every required topic has spoken to the last robot state; steps
where a stream is stale (no message within `tolerance` before the tick) are errors for that step:
counted per topic, never filled, and the bag's steps are cut there into episodes of consecutive good
steps (`on_stale="split"`), or the bag is refused (`on_stale="error"`). Each episode is committed
atomically; a rerun skips the episodes already imported (by bag path and run index).

Time: the bag's receive times by default (one clock for every topic, header-less ones included);
`stamps="header"` uses header.stamp where a message has one.
"""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import numpy as np

from fmb_core.errors import check_choice, check_range
from sim import observation as ob
from sim import recording
from sim.exceptions import DataFormatError
from sim.recorder import EpisodeRecorder, Steps
from sim.store import EpisodeStore

STAMPS = ("receive", "header")
ON_STALE = ("split", "error")
_STATE_KEYS = tuple(ob.store_key(k) for k in (ob.Q, ob.TCP_POSE, ob.TCP_VEL, ob.WRENCH, ob.GRIPPER))


@dataclasses.dataclass(frozen=True)
class BagImportConfig:
    """How to read bags into episodes.

    Attributes:
        topics: the topic mapping (`sim.recording.TopicMap`).
        rate: control rate [Hz] of the episode steps.
        tolerance: largest age [s] of a message used at a tick (default 1.5 control periods).
        stamps: "receive" (the bag's receive times) or "header" (header.stamp where present).
        task: the episodes' task (skill) label.
        success: the operator's success flag for every episode (None = unknown).
        min_steps: shorter runs of good steps are left out.
        on_stale: "split" the bag at stale steps, or "error" (refuse a bag with any).
    """

    topics: recording.TopicMap = recording.TopicMap()
    rate: float = 10.0
    tolerance: float = 0.15
    stamps: str = "receive"
    task: str = "teleop"
    success: bool | None = None
    min_steps: int = 2
    on_stale: str = "split"

    def __post_init__(self):
        check_range("rate", self.rate, 0.1, 1000.0, unit="Hz")
        check_range("tolerance", self.tolerance, 0.0, 60.0, unit="ms", scale=1e3)
        check_choice("stamps", self.stamps, STAMPS)
        check_choice("on_stale", self.on_stale, ON_STALE)
        check_range("min_steps", self.min_steps, 1, 1_000_000)


def read_streams(bag: Path, config: BagImportConfig) -> dict[str, tuple[np.ndarray, list]]:
    """{stream key: ((M,) times [s] ascending, [M converted values])} of every stream in the bag.

    Raises:
        DataFormatError: naming the bag and the missing topic (or one of another type).
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    streams = config.topics.streams()
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as e:  # rosbags raises several unrelated types for unreadable bags
        raise DataFormatError(f"{bag}: not a readable rosbag2 bag ({e})") from None
    try:
        by_topic = {c.topic: c for c in reader.connections}
        for s in streams:
            conn = by_topic.get(s.topic)
            if conn is None and s.required:
                have = ", ".join(sorted(by_topic)) or "none"
                raise DataFormatError(f"{bag}: missing topic {s.topic!r} ({s.msgtype}); topics in the bag: {have}")
            if conn is not None and conn.msgtype != s.msgtype:
                raise DataFormatError(f"{bag}: topic {s.topic!r} is {conn.msgtype}, expected {s.msgtype}")
        wanted = {s.topic: s for s in streams}
        times: dict[str, list] = {s.key: [] for s in streams}
        values: dict[str, list] = {s.key: [] for s in streams}
        conns = [by_topic[t] for t in wanted if t in by_topic]
        for conn, t_ns, raw in reader.messages(connections=conns):
            s = wanted[conn.topic]
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = recording.stamp_seconds(msg) if config.stamps == "header" else None
            try:
                values[s.key].append(s.convert(msg))
            except DataFormatError as e:
                raise DataFormatError(f"{bag}: topic {s.topic!r}: {e}") from None
            times[s.key].append(stamp if stamp is not None else t_ns * 1e-9)
    finally:
        reader.close()
    out = {}
    for s in streams:
        if not times[s.key]:
            raise DataFormatError(f"{bag}: topic {s.topic!r} holds no messages")
        order = np.argsort(np.asarray(times[s.key]), kind="stable")
        out[s.key] = (np.asarray(times[s.key])[order], [values[s.key][i] for i in order])
    return out


def bag_steps(streams: dict, config: BagImportConfig) -> Steps:
    """Replay the streams through the recorder's core (`sim.recorder.EpisodeRecorder`) at control
    ticks from the moment every stream has spoken to the robot's last state message."""
    first = max(t[0] for t, _ in streams.values())
    last = max(streams[k][0][-1] for k in _STATE_KEYS)
    ticks = recording.control_ticks(first, last, config.rate)
    if len(ticks) == 0:
        raise DataFormatError("the topics never all have messages at the same time")
    messages = sorted((t, key, i) for key, (times, _) in streams.items() for i, t in enumerate(times))
    recorder = EpisodeRecorder(config.topics, config.rate, config.tolerance)
    n = 0
    for tick in ticks:
        while n < len(messages) and messages[n][0] <= tick:
            t, key, i = messages[n]
            recorder.add(key, t, streams[key][1][i])
            n += 1
        recorder.tick(tick)
    for t, key, i in messages[n:]:
        recorder.add(key, t, streams[key][1][i])
    return recorder.finish()


def import_bags(bags, out: str | Path, config: BagImportConfig = BagImportConfig(), progress: bool = True) -> dict:
    """Import every bag in `bags` into the store at `out` (created, or resumed).

    Returns:
        {"store", "episodes", "new", "bags": [{"bag", "steps", "stale_steps": {topic: n}, "episodes"}]}.

    Raises:
        DataFormatError: a bag lacks a topic, or (on_stale="error") has stale steps; naming both.
    """
    from tqdm import tqdm

    topic_of = {s.key: s.topic for s in config.topics.streams()}
    store = EpisodeStore.create(
        out,
        {
            "task": config.task,
            "backend": "real",
            "fps": config.rate,
            "source": "rosbag",
            "cameras": list(config.topics.cameras),
            "topics": {k: v for k, v in topic_of.items()},
            "alignment": {"tolerance": config.tolerance, "stamps": config.stamps, "rule": "nearest-before"},
        },
    )
    done = {(m.get("bag"), m.get("bag_run")) for m in map(store.load_meta, store.episode_indices())}
    report, new = [], 0
    for bag in tqdm([Path(b).absolute() for b in bags], desc="import bags", unit="bag", disable=not progress):
        if not bag.exists():
            raise DataFormatError(f"{bag}: no such bag")
        steps = bag_steps(read_streams(bag, config), config)
        data, bad, stale_topics = steps.data, steps.bad, steps.stale
        if stale_topics and config.on_stale == "error":
            raise DataFormatError(f"{bag}: stale data (older than {config.tolerance} s) at steps: {stale_topics}")
        runs = steps.episodes(config.min_steps)
        for i, (a, b) in enumerate(runs):
            if (str(bag), i) in done:
                continue
            meta = {
                "seed": zlib.crc32(f"{bag}#{i}".encode()) & 0x7FFFFFFF,
                "task": config.task,
                "success": config.success,
                "source": "rosbag",
                "bag": str(bag),
                "bag_run": i,
                "bag_steps": [a, b],
            }
            store.append({k: v[a:b] for k, v in data.items()}, meta)
            new += 1
        report.append({"bag": str(bag), "steps": len(bad), "stale_steps": stale_topics, "episodes": len(runs)})
    return {"store": str(store.root), "episodes": len(store), "new": new, "bags": report}
