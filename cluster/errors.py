"""Exceptions raised by :mod:`suanli.cluster`: its part of :mod:`suanli.errors`."""

from __future__ import annotations

from suanli.errors import (
    ClusterError,
    ClusterSpecError,
    ClusterUsageError,
    SchedulerLost,
    SuanliError,
)

__all__ = ["ClusterError", "ClusterSpecError", "ClusterUsageError", "SchedulerLost",
           "SuanliError"]
