"""`fmb bench record`: does `fmb_recorder` keep the control rate with three 256 px cameras and a
4096-point cloud? Dropped steps, stale steps, tick jitter, the commit's time and the recorder's CPU.

Three processes over Fast DDS on loopback (own ROS_DOMAIN_ID), as on a robot where the drivers run
apart from the recorder: a stand-in robot (`python -m fmb_ros.bench_record --publish`: arm state at
`state_rate`, commands at the control rate, `cameras` rgb8 images of `size` px at `image_rate`, a
fused cloud of `points` points at the control rate; messages built once, re-stamped), `fmb_recorder`
(the node as deployed: cameras and `points` parameters), and this process, which calls ~/start, waits
`seconds`, calls ~/stop and reads the recorder's per-tick status and the store.

- `ticks`: the recorder's steps counted from its status (one per tick) over the wall time between
  the first tick and ~/stop; `dropped_ticks`: the ticks a 10 Hz clock would have had minus those.
- `stale_steps`: steps where a topic's newest message was older than `tolerance` (never padded).
- `tick_period_ms`: wall time between consecutive status messages (median / p99 / max).
- `commit_s`: the ~/stop call (the episode written atomically, images compressed).
- `recorder_cpu`: the recorder process's CPU time over the recording / wall time (1.0 = one core).
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fmb_core.errors import FmbError, check_range


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time [s] of process `pid` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary_ms(values) -> dict:
    a = np.asarray(values, float) * 1000.0
    if a.size == 0:
        return {"n": 0}
    pct = {"median": np.median(a), "p99": np.percentile(a, 99), "max": a.max()}
    return {"n": int(a.size), **{k: round(float(v), 1) for k, v in pct.items()}}


def bench_record(
    folder,
    seconds: float = 30.0,
    rate: float = 10.0,
    cameras: tuple[str, ...] = ("side_1", "side_2", "wrist"),
    size: int = 256,
    points: int = 4096,
    image_rate: float = 15.0,
    state_rate: float = 50.0,
    tolerance: float = 0.15,
    log=print,
) -> dict:
    """Record one episode of `seconds` [s] through the three processes above; return the figures.

    Args:
        folder: scratch folder (the store and the processes' logs go here).
        rate: the recorder's control rate [Hz]; image_rate, state_rate: the stand-in robot's [Hz].
        tolerance: the recorder's `tolerance` [s] (a message older at a tick makes the step stale).
        size: image width and height [px]; points: cloud size (recorded as is: no resampling needed).
    """
    import rclpy
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_srvs.srv import SetBool, Trigger

    from fmb_ros import convert, qos

    check_range("seconds", seconds, 1.0, 3600.0, unit="s")
    check_range("size", size, 8, 2048, unit="px")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    domain = 150 + os.getpid() % 50
    env = dict(
        os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOG_DIR=str(folder)
    )
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    cams = "[" + ", ".join(cameras) + "]"
    publisher_args = [f"--seconds={seconds + 120}", f"--rate={rate}", f"--cameras={','.join(cameras)}"]
    publisher_args += [
        f"--size={size}",
        f"--points={points}",
        f"--image-rate={image_rate}",
        f"--state-rate={state_rate}",
    ]
    recorder_args = ["-p", f"store:={folder / 'store'}", "-p", "task:=bench", "-p", f"points:={points}"]
    recorder_args += ["-p", f"rate:={rate}", "-p", f"tolerance:={float(tolerance)}"] + (
        ["-p", f"cameras:={cams}"] if cameras else []
    )
    procs = {}
    with open(folder / "robot.log", "w") as out:
        procs["robot"] = subprocess.Popen(
            [sys.executable, "-m", "fmb_ros.bench_record", "--publish", *publisher_args],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    with open(folder / "recorder.log", "w") as out:
        procs["recorder"] = subprocess.Popen(
            [sys.executable, "-m", "fmb_ros.recorder_node", "--ros-args", *recorder_args],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("bench_record", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    statuses: list[tuple[float, dict]] = []

    def on_status(msg) -> None:
        statuses.append((time.perf_counter(), convert.status_values(msg)))

    node.create_subscription(DiagnosticStatus, "fmb_recorder/status", on_status, qos.STATE)

    def spin_until(predicate, timeout: float, what: str):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
            if predicate():
                return
        tails = "\n".join(f"--- {n}\n{(folder / f'{n}.log').read_text()[-1500:]}" for n in procs)
        raise FmbError(f"bench record: no {what} within {timeout:g} s\n{tails}")

    def call(client, request, timeout: float = 120.0):
        spin_until(lambda: client.service_is_ready(), 60.0, f"service {client.srv_name}")
        future = client.call_async(request)
        spin_until(future.done, timeout, f"reply from {client.srv_name}")
        return future.result()

    try:
        start, stop = (
            node.create_client(Trigger, "fmb_recorder/start"),
            node.create_client(SetBool, "fmb_recorder/stop"),
        )
        spin_until(lambda: statuses, 60.0, "recorder status")
        load_before = os.getloadavg()[0]
        reply = call(start, Trigger.Request())
        if not reply.success:
            raise FmbError(f"bench record: ~/start refused: {reply.message}")
        spin_until(lambda: int(statuses[-1][1].get("steps", 0)) > 0, 60.0, "first recorded step (every topic)")
        first = len(statuses) - 1
        t0, cpu0 = statuses[first][0], _cpu_seconds(procs["recorder"].pid)
        log(f"recording {seconds:g} s: {len(cameras)} cameras {size} px, {points} points, {rate:g} Hz")
        spin_until(lambda: time.perf_counter() - t0 >= seconds, seconds + 60.0, "end of the recording")
        t1, cpu1 = time.perf_counter(), _cpu_seconds(procs["recorder"].pid)
        window = [(t, int(v.get("steps", 0))) for t, v in statuses[first:] if v.get("recording") == "true"]
        ticks = window[-1][1] - window[0][1] + 1
        commit_start = time.perf_counter()
        reply = call(stop, SetBool.Request(data=True))
        commit = time.perf_counter() - commit_start
        load_after = os.getloadavg()[0]
        stale = ast.literal_eval(reply.message.split("stale steps ", 1)[1]) if "stale steps {" in reply.message else {}
        periods = np.diff([t for t, _ in window])
        kept = [int(n) for n in re.findall(r"\d+", reply.message.split(" steps")[0].split(" of ")[-1])]
        store_bytes = sum(p.stat().st_size for p in (folder / "store").rglob("*") if p.is_file())
        expected = int(np.floor((window[-1][0] - window[0][0]) * rate + 1e-9)) + 1
        return {
            "seconds": round(window[-1][0] - window[0][0], 2),
            "rate": rate,
            "cameras": list(cameras),
            "image_size": size,
            "points": points,
            "image_rate": image_rate,
            "state_rate": state_rate,
            "tolerance": tolerance,
            "ticks": ticks,
            "expected_ticks": expected,
            "dropped_ticks": max(expected - ticks, 0),
            "stale_steps": stale,
            "kept_steps": kept if reply.success else [],
            "stop_reply": reply.message,
            "tick_period_ms": _summary_ms(periods),
            "commit_s": round(commit, 2),
            "store_mb": round(store_bytes / 1e6, 2),
            "recorder_cpu": round((cpu1 - cpu0) / (t1 - t0), 2),
            "load_before_after": [round(load_before, 2), round(load_after, 2)],
        }
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _publish(argv) -> int:
    """The stand-in robot (see module docstring); runs `--seconds` then exits."""
    import argparse

    import rclpy
    from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image, JointState, PointCloud2
    from std_msgs.msg import Float64

    from fmb_ros import convert, qos
    from sim.panda import ARM_JOINTS, FINGER_JOINTS

    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float)
    p.add_argument("--rate", type=float)
    p.add_argument("--cameras")
    p.add_argument("--size", type=int)
    p.add_argument("--points", type=int)
    p.add_argument("--image-rate", type=float)
    p.add_argument("--state-rate", type=float)
    a = p.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node("bench_robot")
    rng = np.random.default_rng(0)
    pose = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])
    clock = node.get_clock()

    def stamp(msg):
        msg.header.stamp = clock.now().to_msg()
        return msg

    state = {
        node.create_publisher(JointState, "joint_states", qos.STATE): convert.joint_state_msg(
            ARM_JOINTS, np.zeros(7), np.zeros(7), seconds=0.0
        ),
        node.create_publisher(PoseStamped, "tcp_pose", qos.STATE): convert.pose_stamped_msg(pose, "panda_link0", 0.0),
        node.create_publisher(TwistStamped, "tcp_twist", qos.STATE): convert.twist_msg(np.zeros(6), "panda_link0", 0.0),
        node.create_publisher(WrenchStamped, "wrench", qos.STATE): convert.wrench_msg(
            np.zeros(6), "panda_hand_tcp", 0.0
        ),
        node.create_publisher(JointState, "gripper/joint_states", qos.STATE): convert.joint_state_msg(
            FINGER_JOINTS, [0.04, 0.04], seconds=0.0
        ),
    }
    commands = {
        node.create_publisher(PoseStamped, "equilibrium_pose", qos.COMMAND): convert.pose_stamped_msg(
            pose, "panda_link0", 0.0
        ),
        node.create_publisher(Float64, "gripper/command", qos.COMMAND): Float64(data=0.08),
    }
    images = {}
    for cam in filter(None, a.cameras.split(",")):
        rgb = rng.integers(0, 256, (a.size, a.size, 3), dtype=np.uint8)
        images[node.create_publisher(Image, f"camera/{cam}/image_raw", qos.SENSOR)] = convert.image_msg(
            rgb, f"{cam}_optical_frame", 0.0
        )
    cloud = np.concatenate([rng.uniform(0, 1, (a.points, 3)), rng.uniform(0, 1, (a.points, 3))], axis=1)
    cloud_pub = node.create_publisher(PointCloud2, "points", qos.SENSOR)
    cloud_msg = convert.point_cloud_msg(cloud, "panda_link0", 0.0)

    def publish(messages):
        for pub, msg in messages.items():
            pub.publish(stamp(msg) if hasattr(msg, "header") else msg)

    node.create_timer(1.0 / a.state_rate, lambda: publish(state))
    node.create_timer(1.0 / a.rate, lambda: (publish(commands), cloud_pub.publish(stamp(cloud_msg))))
    node.create_timer(1.0 / a.image_rate, lambda: publish(images))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + a.seconds
    try:
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def add_flags(p) -> None:
    """The flags of `fmb bench record` on parser `p`."""
    p.add_argument("--seconds", type=float, default=30.0, help="length of the recorded episode [s] (default 30)")
    p.add_argument("--size", type=int, default=256, help="image width and height [px] (default 256)")
    p.add_argument("--points", type=int, default=4096, help="cloud points (default 4096)")
    p.add_argument("--cameras", default="side_1,side_2,wrist", help="comma-separated cameras, '' = none (default 3)")
    p.add_argument("--image-rate", type=float, default=15.0, help="camera frame rate [Hz] (default 15)")
    p.add_argument("--tolerance", type=float, default=0.15, help="the recorder's tolerance [s] (default 0.15)")
    p.add_argument("--json", action="store_true", help="JSON only on stdout (default: indented)")


def run(args) -> int:
    """`fmb bench record`'s handler: one recording in a scratch folder, the figures as JSON."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fmb_bench_record_") as tmp:
        cameras = tuple(c for c in args.cameras.split(",") if c)
        result = bench_record(
            tmp, args.seconds, cameras=cameras, size=args.size, points=args.points, image_rate=args.image_rate,
            tolerance=args.tolerance, log=lambda m: print(m, file=sys.stderr),
        )  # fmt: skip
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def main(argv=None) -> int:
    """`python -m fmb_ros.bench_record [--seconds 30] [--json]` (what `fmb bench record` runs), or the
    stand-in robot with `--publish`."""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--publish":
        return _publish(argv[1:])
    p = argparse.ArgumentParser(prog="fmb bench record", description=__doc__.splitlines()[0])
    add_flags(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
