"""The recorder's core fed live: skipped ticks before every stream has spoken, stale steps marked
and never filled, the action completed one tick later (or at finish)."""

from __future__ import annotations

import numpy as np

from sim import recording
from sim.recorder import EpisodeRecorder

POSE = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


def _state(rec, t, x=0.5):
    pose = POSE.copy()
    pose[0] = x
    rec.add("obs/q", t, np.concatenate([np.full(7, t), np.zeros(7)]))
    rec.add("obs/tcp_pose", t, pose)
    rec.add("obs/tcp_vel", t, np.zeros(6))
    rec.add("obs/wrench", t, np.zeros(6))
    rec.add("obs/gripper", t, [0.08])


def test_live_recording_marks_stale_steps_and_completes_actions():
    rec = EpisodeRecorder(recording.TopicMap(cameras=("wrist",)), rate=10.0, tolerance=0.15)
    _state(rec, 0.0)
    assert not rec.tick(0.0)  # no command or image yet: not started, nothing recorded
    target = POSE.copy()
    target[0] = 0.51
    for k in range(6):
        t = 0.1 * k + 0.01
        _state(rec, t, x=0.5 + 0.001 * k)
        rec.add(recording.COMMAND, t + 0.005, target)
        rec.add(recording.GRIPPER_COMMAND, t + 0.005, [0.0 if k >= 3 else 0.08])
        if k < 3:  # the camera stops after the third frame
            rec.add("obs/rgb/wrist", t, np.full((2, 2, 3), k, np.uint8))
        rec.tick(t + 0.02)
    steps = rec.finish()
    assert len(steps.ticks) == 6
    assert steps.bad.tolist() == [False, False, False, False, True, True]  # frame of 0.21 s is stale after 0.36 s
    assert steps.stale == {"/camera/wrist/image_raw": 2}
    assert steps.episodes(min_steps=2) == [(0, 4)]
    assert steps.data["obs/rgb/wrist"][:4, 0, 0, 0].tolist() == [0, 1, 2, 2]  # step 3 (0.33 s) uses 0.21 s's frame
    assert not steps.data["obs/rgb/wrist"][4:].any()  # bad rows are never filled
    # action of step k: command at tick k+1 (its gripper closes from the command sent at 0.315 s) vs pose at tick k
    np.testing.assert_allclose(steps.data["action"][:4, 0], 0.51 - (0.5 + 0.001 * np.arange(4)), atol=1e-6)
    assert steps.data["action"][:4, 6].tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(steps.data["obs/q"][:4, 0], [0.01, 0.11, 0.21, 0.31], atol=1e-6)


def test_camera_topics_follow_the_drivers_names():
    """A RealSense driver's colour and aligned-depth topics are recorded under its own names."""
    topics = recording.TopicMap(
        cameras=("side_1",),
        depth=True,
        camera_namespace="/camera",
        rgb_topic="color/image_raw",
        depth_topic="aligned_depth_to_color/image_raw",
    )
    names = {s.key: s.topic for s in topics.streams()}
    assert names["obs/rgb/side_1"] == "/camera/side_1/color/image_raw"
    assert names["obs/depth/side_1"] == "/camera/side_1/aligned_depth_to_color/image_raw"
    assert recording.TopicMap(cameras=("wrist",)).streams()[-1].topic == "/camera/wrist/image_raw"
