"""Errors raised by `fmb_ros`. All derive from :class:`fmb_core.errors.FmbError`."""

from fmb_core.errors import FmbError, ParameterError


class RosError(FmbError):
    """Base class of the ROS layer's errors."""


class ConversionError(ParameterError, RosError):
    """A message that cannot be turned into arrays (wrong encoding, size or layout)."""


class GoalError(ParameterError, RosError):
    """A skill goal that is rejected (unknown frame, outside the workspace, no observation)."""


__all__ = ["ConversionError", "GoalError", "ParameterError", "RosError"]
