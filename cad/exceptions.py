"""Errors raised by `cad`. All derive from :class:`fmb_core.FmbError`."""

from fmb_core.errors import FmbError, ParameterError


class CadError(FmbError):
    """Base class for CAD errors."""


class UnknownShapeError(ParameterError, CadError):
    """A shape family name is not registered; the message lists the known ones."""


class PrintabilityError(CadError):
    """A part fails a print-readiness check (watertight, wall thickness, feature size, ...)."""


class TilingError(CadError):
    """A part cannot be tiled for the printer bed; the message names the part and the smallest bed that works."""


class DecompositionError(CadError):
    """The exact convex decomposition of a region failed its own checks."""


__all__ = ["CadError", "DecompositionError", "ParameterError", "PrintabilityError", "TilingError", "UnknownShapeError"]
