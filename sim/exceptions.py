"""Errors raised by `sim`. All derive from :class:`fmb.FmbError`."""

from fmb.errors import FmbError, ParameterError


class SimError(FmbError):
    """Base class for simulation errors."""


class UnknownNameError(ParameterError, SimError):
    """An unknown task, backend, object or camera name; the message lists the known ones."""


class AssetError(SimError):
    """An object's simulator assets are missing or unreadable."""


class ActionError(ParameterError, SimError):
    """An action of the wrong shape, or with NaN/inf."""


class PerceptionError(SimError):
    """Perception cannot run (open3d missing, an unknown part) or found nothing."""


__all__ = ["ActionError", "AssetError", "ParameterError", "PerceptionError", "SimError", "UnknownNameError"]
