"""The `fmb` command line and the error base shared by every layer of the stack.

`cad`, `sim`, `policies` and `fmb_ros` raise subclasses of :class:`FmbError`; the command
line turns any of them into a one-line message and exit code 2.
"""

from fmb.errors import FmbError, ParameterError

__all__ = ["FmbError", "ParameterError"]
