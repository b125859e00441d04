"""Exceptions raised by :mod:`suanli.cluster`."""

from __future__ import annotations


class ClusterError(Exception):
    """A cluster could not be planned, started or reached."""


class ClusterSpecError(ClusterError, ValueError):
    """A :class:`ClusterSpec` field holds a value that is not allowed.

    The message names the field, the value given and what is allowed.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"cluster spec field {field!r} = {value!r} is not allowed: {allowed}")


class SchedulerLost(ClusterError):
    """The scheduler stopped answering while work was running on it."""
