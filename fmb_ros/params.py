"""Declaring node parameters up front from one table: name -> (default, description).

    PARAMETERS = {"seed": (0, "scene seed of the next reset"), "cameras": ([], "cameras to render")}
    values = declare_all(node, PARAMETERS)     # {name: value}, overrides from YAML / -p applied

An empty list default declares a string array. Every description carries the unit in brackets.
"""

from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter


def declare_all(node: Node, table: dict[str, tuple[object, str]], read_only: tuple[str, ...] = ()) -> dict:
    """Declare every parameter of `table` on `node`; return their (possibly overridden) values.

    Args:
        node: the node.
        table: name -> (default value, description).
        read_only: names that cannot change after start (marked so in their descriptors).
    """
    values = {}
    for name, (default, description) in table.items():
        descriptor = ParameterDescriptor(description=description, read_only=name in read_only)
        if isinstance(default, list) and not default:
            param = node.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor)
            values[name] = list(param.value) if param.value is not None else []
        else:
            values[name] = node.declare_parameter(name, default, descriptor).value
        if isinstance(values[name], list | tuple):
            values[name] = list(values[name])
    return values


PARAMETER_NAMES = {"num_samples": "candidates"}
"""The core's parameter names whose ROS parameter is called otherwise (the rest are the same)."""


def parameter_message(error: Exception) -> str:
    """`error`'s message as a ROS user reads it: a ParameterError names the node's parameter
    ("candidates"), not the core's field ("num_samples") or a command-line flag."""
    from fmb_core.errors import FmbError, ParameterError

    if isinstance(error, ParameterError):
        return error.named(PARAMETER_NAMES.get(error.field, error.field))
    return str(error) if isinstance(error, FmbError) else f"{type(error).__name__}: {error}"
