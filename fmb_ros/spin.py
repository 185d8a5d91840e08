"""Process ownership for fmb_ros executables: init, build nodes, spin, shut down in order.

Signals are handled in Python (rclpy's own handler is not installed): SIGINT and SIGTERM end the
wait in the main thread, which then shuts down the executor, joins the spin thread, destroys the
nodes and shuts rclpy down, in that order (an abort at exit was seen with the default handler).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from fmb_core.errors import FmbError


def spin_nodes(args, *factories: Callable[[], Node], duration: float | None = None) -> int:
    """Init rclpy with `args`, build one node per factory, spin them on a MultiThreadedExecutor
    until SIGINT/SIGTERM or for `duration` wall seconds, then shut down in order. Returns the exit
    code: 2 when a node refuses its parameters (the message names the parameter), else 0."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    nodes: list[Node] = []
    code = 0
    try:
        nodes = [factory() for factory in factories]
    except FmbError as e:
        print(f"fmb_ros: error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        pass
    if code == 0 and nodes:
        executor = MultiThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        thread = threading.Thread(target=_spin, args=(executor,), name="fmb_ros_spin")
        thread.start()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while thread.is_alive() and (deadline is None or time.monotonic() < deadline):
                thread.join(timeout=0.2)
        except KeyboardInterrupt:
            pass
        executor.shutdown()
        thread.join()
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown()
    signal.signal(signal.SIGTERM, previous)
    return code


def exit_process(code: int) -> None:
    """End an executable after `spin_nodes` has shut everything down: flush and leave without the
    interpreter's finalisation, where middleware threads still joinable at exit occasionally abort
    the process ("terminate called without an active exception", exit -6, seen in about 1 of 10
    runs here) although every node and the context were already shut down."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _spin(executor) -> None:
    try:
        executor.spin()
    except ExternalShutdownException:
        pass
