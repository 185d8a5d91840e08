"""Process ownership for fmb_ros executables: init, build nodes, spin, shut down in order.

The executor: a process of one node whose callbacks all share its default (mutually exclusive)
callback group spins on a SingleThreadedExecutor, which runs the same callbacks in the same order
as a MultiThreadedExecutor would (the group serialises them) without rclpy's multi-threaded
polling: that cost `fmb_recorder` 0.65 of a core and made it drop 29-33 of 300 ticks at 10 Hz
(`fmb bench record`, docs/results/2026-12-07-record.md). Several nodes in one process (`fmb ros up
sim`), or a node with callback groups of its own (`fmb_perception` estimates beside its
subscriptions), get a MultiThreadedExecutor.

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
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from fmb_core.errors import FmbError


def spin_nodes(args, *factories: Callable[[], Node], duration: float | None = None) -> int:
    """Init rclpy with `args`, build one node per factory, spin them (`executor_for`) until
    SIGINT/SIGTERM or for `duration` wall seconds, then shut down in order. Returns the exit code:
    2 when a node refuses its parameters (the message names the parameter), else 0."""
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
        executor = executor_for(nodes)
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


def executor_for(nodes: list[Node]) -> Executor:
    """A SingleThreadedExecutor for one node whose entities all use its default callback group,
    else a MultiThreadedExecutor (the module docstring says why)."""
    if len(nodes) == 1:
        node = nodes[0]
        entities = [*node.timers, *node.subscriptions, *node.services, *node.clients, *node.guards, *node.waitables]
        if all(getattr(e, "callback_group", None) is node.default_callback_group for e in entities):
            return SingleThreadedExecutor(context=node.context)
    return MultiThreadedExecutor(context=nodes[0].context if nodes else None)


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
