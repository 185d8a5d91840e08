"""Unit conversion at the CAD file boundary.

Code works in SI units (metres). Printable files (STL, 3MF, STEP), their manifest and the FMB
drawings are in millimetres; conversions happen only through this module.
"""

from __future__ import annotations

import numpy as np

MM = 1e-3
"""One millimetre [m]."""


def mm(value):
    """Millimetres -> metres. Accepts scalars and arrays."""
    if isinstance(value, (list, tuple)):
        return type(value)(v * MM for v in value)
    return value * MM


def to_mm(value):
    """Metres -> millimetres. Accepts scalars and arrays."""
    if isinstance(value, (list, tuple)):
        return type(value)(v / MM for v in value)
    if isinstance(value, np.ndarray):
        return value / MM
    return value / MM
