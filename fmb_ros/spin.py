"""Process ownership for fmb_ros executables: init, build nodes, spin, shut down in order."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from fmb.errors import FmbError


def spin_nodes(args, *factories: Callable[[], Node], duration: float | None = None) -> int:
    """Init rclpy with `args`, build one node per factory, spin them on a MultiThreadedExecutor
    until shutdown (Ctrl-C or SIGTERM) or for `duration` wall seconds, then shut down in order:
    executor, spin thread, nodes, rclpy. Returns the exit code: 2 when a node refuses its
    parameters (the message names the parameter), else 0."""
    rclpy.init(args=args)
    nodes: list[Node] = []
    code = 0
    try:
        nodes = [factory() for factory in factories]
    except FmbError as e:
        print(f"fmb_ros: error: {e}", file=sys.stderr)
        code = 2
    if code == 0:
        executor = MultiThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        thread = threading.Thread(target=_spin, args=(executor,), daemon=True)
        thread.start()
        try:
            thread.join(timeout=duration)  # Ctrl-C shuts the context down, which ends the spin
        except KeyboardInterrupt:
            pass
        executor.shutdown()
        thread.join(timeout=5.0)
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown()
    return code


def _spin(executor) -> None:
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
