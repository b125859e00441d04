"""Reads retried with backoff when the storage fails for a moment (RELIABILITY R6).

Dask's own ``retries=`` reruns a task at once, with no wait, and for any error; a
network file system or object store that hiccups needs a pause, and an error in
the data itself (a ``ValueError``, a checksum) should never be retried. Here only
an ``OSError`` that may pass is retried, after a growing, jittered wait; the
attempts and waits are Dask config (``suanli.datasets.read-retries``), read when
the read happens, on the worker doing it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import dask.config
from dask.utils import parse_timedelta

from .errors import DatasetError

T = TypeVar("T")

logger = logging.getLogger("suanli.datasets")

#: OSErrors that say something about the path, not the moment: never retried.
LASTING = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def transient(error: BaseException) -> bool:
    """Whether ``error`` may go away when the read is tried again.

    That is an ``OSError`` from the operating system (it carries an errno: EIO,
    ESTALE, ECONNRESET, ...) or a timeout or broken connection, and not one of
    the :data:`LASTING` kinds. Libraries raise errno-less OSErrors for data that
    does not decode (h5py for a truncated file, pyarrow for a bad page): those
    fail the same way every time and are not retried.
    """
    if not isinstance(error, OSError) or isinstance(error, LASTING):
        return False
    return error.errno is not None or isinstance(error, TimeoutError | ConnectionError)


def backoff_waits() -> list[float]:
    """The longest wait before each retry, from the config (without the jitter)."""
    key = "suanli.datasets.read-retries"
    config = dask.config.get(key)
    attempts = config["attempts"]
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise DatasetError(f"config {key}.attempts must be a whole number of at least 1 "
                         f"(1: no retries), not {attempts!r}")
    first = float(parse_timedelta(config["backoff"]))
    most = float(parse_timedelta(config["max-backoff"]))
    return [min(first * 2**retry, most) for retry in range(attempts - 1)]


def attempts_note(error: BaseException) -> str:
    """``" after N attempts"`` for an error that was retried, for its message."""
    return f" after {len(backoff_waits()) + 1} attempts" if transient(error) else ""


def read_with_retries(read: Callable[[], T], *, what: str) -> T:
    """``read()``, tried again after a transient ``OSError`` as the config says.

    ``what`` (a path, or a path and chunk) goes into the log line of each retry.
    The last error, or any other, is raised as it is.
    """
    waits = backoff_waits()
    for retry in range(len(waits) + 1):
        try:
            return read()
        except Exception as error:
            if retry == len(waits) or not transient(error):
                raise
            wait = waits[retry] * (1 - random.random() / 2)
            logger.warning("reading %s failed (%s: %s); retry %d of %d in %.2f s", what,
                           type(error).__name__, error, retry + 1, len(waits), wait)
            time.sleep(wait)
    raise AssertionError("unreachable")
