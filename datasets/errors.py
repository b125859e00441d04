"""Exceptions raised by :mod:`suanli.datasets`: its part of :mod:`suanli.errors`."""

from __future__ import annotations

from suanli.errors import DatasetError, SuanliError

__all__ = ["DatasetError", "SuanliError"]
