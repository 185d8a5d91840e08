"""Process ownership for fmb_ros executables: init, build nodes, spin, shut down in order."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from fmb.errors import FmbError


def spin_nodes(args, *factories: Callable[[], Node], duration: float | None = None) -> int:
    """Init rclpy with `args`, build one node per factory, spin them on a MultiThreadedExecutor
    until shutdown (Ctrl-C or SIGTERM) or for `duration` wall seconds, then destroy them and shut
    down. Returns the exit code: 2 when a node refuses its parameters (the message names the
    parameter), else 0."""
    rclpy.init(args=args)
    nodes: list[Node] = []
    executor = None
    code = 0
    try:
        nodes = [factory() for factory in factories]
        executor = MultiThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        if duration is None:
            executor.spin()
        else:
            end = time.monotonic() + duration
            while rclpy.ok() and time.monotonic() < end:
                executor.spin_once(timeout_sec=min(0.1, max(end - time.monotonic(), 0.0)))
    except FmbError as e:
        print(f"fmb_ros: error: {e}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)  # waits for running callbacks
            for node in nodes:
                executor.remove_node(node)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
