"""The ground floor of the FMB stack: errors, input checks, atomic writes, versioned JSON and the
thread budget. Every layer (`cad`, `sim`, `policies`, `fmb_ros` and the `fmb` application on top)
imports it; it imports none of them.

`cad`, `sim`, `policies` and `fmb_ros` raise subclasses of :class:`FmbError`; the command line turns
any of them into a one-line message and exit code 2.
"""

from fmb_core.errors import FmbError, ParameterError

__all__ = ["FmbError", "ParameterError"]
