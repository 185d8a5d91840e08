"""Base exception and shared validation helpers.

Every error a user can cause derives from :class:`FmbError`. Messages say what was expected,
what was given and what is available. The core names a parameter by its name in the code (a config
field or argument, `num_samples`); each shell says it its own way: the command line as its flag
(`--candidates`, `fmb.cli`), the ROS nodes as their parameter (`candidates`, `fmb_ros.params`), with
`ParameterError.named`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable


class FmbError(Exception):
    """Base class of every error the FMB stack raises on purpose."""


class ParameterError(FmbError, ValueError):
    """A parameter is out of range, of the wrong kind, or unknown.

    Attributes:
        field: the parameter's name in the code ("num_samples"); "" when no one parameter is meant.
        value: the value given (None when not recorded).
        allowed: what is allowed: a (low, high) range or the choices (None when not recorded).
    """

    def __init__(self, message: str, field: str = "", value=None, allowed=None):
        super().__init__(message)
        self.field = field
        self.value = value
        self.allowed = allowed

    def named(self, name: str) -> str:
        """The message with the parameter called `name` (a shell's word for `field`: a flag, a ROS
        parameter) where it names `field`."""
        if not self.field or not name or name == self.field:
            return str(self)
        return re.sub(rf"(?<![\w-]){re.escape(self.field)}(?![\w-])", lambda _: name, str(self), count=1)


def check_choice(name: str, value: str, choices: Iterable[str]) -> str:
    """Return `value` if it is one of `choices`, else raise a ParameterError listing them."""
    choices = list(choices)
    if value not in choices:
        raise ParameterError(f"unknown {name} {value!r}; known: {', '.join(choices)}", name, value, tuple(choices))
    return value


def check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    unit: str = "",
    scale: float = 1.0,
    inclusive: bool = True,
) -> float:
    """Return `value` if it is a finite number in [low, high], else raise ParameterError.

    Args:
        name: the parameter's name in the code (a config field or argument: "num_samples").
        value: the value in SI units.
        low, high: allowed range in SI units.
        unit: unit shown in the message (for example "mm").
        scale: factor from SI to the shown unit (1000 for metres shown in mm).
        inclusive: whether the bounds themselves are allowed.
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}", name, value, (low, high)) from None
    ok = math.isfinite(value) and (low <= value <= high if inclusive else low < value < high)
    if not ok:
        u = f" {unit}" if unit else ""
        brackets = "[]" if inclusive else "()"
        raise ParameterError(
            f"{name}={_fmt(value * scale)}{u} is out of range "
            f"{brackets[0]}{_fmt(low * scale)}, {_fmt(high * scale)}{brackets[1]}{u}",
            name,
            value,
            (low, high),
        )
    return value


def check_length_mm(name: str, value_m: float, low_m: float, high_m: float) -> float:
    """Range check for a length given in metres, reported to the user in millimetres."""
    return check_range(name, value_m, low_m, high_m, unit="mm", scale=1000.0)


def _fmt(x: float) -> str:
    return f"{x:.6g}"
