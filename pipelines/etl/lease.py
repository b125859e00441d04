"""One ETL run per output root at a time: a lease in storage, with a fencing token.

A lease is a numbered record under ``ROOT/_etl/leases/``: ``000000000007.json``
holds token 7's owner, host, pid, start and heartbeat. The highest number is the
current lease. Taking a lease means creating the next number's record
*exclusively* (``O_EXCL`` locally, a conditional ``If-None-Match`` write on object
storage), so of two runs racing for it exactly one wins. The holder rewrites its
heartbeat every few seconds; a lease whose heartbeat is older than
``takeover_after`` (its runner was killed) is taken over by creating the next
number. Before each commit the holder checks that no higher number exists: a run
that lost its lease (paused, partitioned away, overtaken) cannot commit (fencing),
and stops. Releasing writes ``released`` into the record; numbers are never reused.

The check and the commit are two steps, so a holder paused for longer than
``takeover_after`` between them could still commit once after losing its lease; the
heartbeat interval (a tenth of ``takeover_after``) keeps that window small.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec

from suanli.datasets import read_with_retries

from ..errors import LeaseHeld, LeaseLost

LEASES = "_etl/leases"
#: A lease whose heartbeat is older than this is taken over (its runner is gone).
DEFAULT_TAKEOVER_AFTER = 300.0


def _folder(root: str) -> str:
    return f"{root.rstrip('/')}/{LEASES}"


def _name(token: int) -> str:
    return f"{token:012d}.json"


def _filesystem(root: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    fs, path = fsspec.core.url_to_fs(_folder(root), **(storage_options or {}))
    return fs, str(path)


def current_lease(root: str, storage_options: dict[str, Any] | None = None
                  ) -> dict[str, Any] | None:
    """The highest-numbered lease record under ``root`` (with its ``token``), or None;
    a transient storage error is retried (R6)."""
    return read_with_retries(lambda: _latest(root, storage_options),
                             what=f"{_folder(root)}")


def _latest(root: str, storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    fs, folder = _filesystem(root, storage_options)
    fs.invalidate_cache(folder)  # object stores' listings are cached; another run writes
    if not fs.exists(folder):
        return None
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)
                   if p.endswith(".json"))
    if not names:
        return None
    with fs.open(f"{folder}/{names[-1]}", "rb") as handle:
        record: dict[str, Any] = json.loads(handle.read())
    record["token"] = int(names[-1].removesuffix(".json"))
    return record


def _create_exclusive(fs: Any, path: str, data: bytes) -> bool:
    """Write ``data`` to ``path`` (on ``fs``) only if nothing is there; whether this
    call did."""
    if "file" in fs.protocol:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        return True
    try:
        fs.pipe_file(path, data, mode="create")
    except (FileExistsError, OSError) as error:
        if isinstance(error, FileExistsError) or "PreconditionFailed" in str(error) or \
                "412" in str(error):
            return False
        raise
    return True


@dataclass
class Lease:
    """A lease this process holds: heartbeats in a thread until released."""

    root: str
    token: int
    record: dict[str, Any]
    interval: float
    storage_options: dict[str, Any] | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lost: threading.Event = field(default_factory=threading.Event, repr=False)

    def check(self) -> None:
        """The fence: raise :class:`LeaseLost` if a later lease exists."""
        latest = current_lease(self.root, self.storage_options)
        if self._lost.is_set() or latest is None or latest["token"] != self.token:
            self._lost.set()
            holder = "" if latest is None else \
                f" (now token {latest['token']}, {latest.get('owner')} on {latest.get('host')})"
            raise LeaseLost(f"this run lost its lease on {self.root} (token {self.token})"
                            f"{holder}: it commits nothing more and stops")

    def _write(self) -> None:
        fs, folder = _filesystem(self.root, self.storage_options)
        fs.pipe_file(f"{folder}/{_name(self.token)}", json.dumps(self.record).encode())

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            latest = current_lease(self.root, self.storage_options)
            if latest is None or latest["token"] != self.token:
                self._lost.set()  # overtaken: never write over another's lease
                return
            self.record["heartbeat"] = time.time()
            with contextlib.suppress(OSError):
                self._write()

    def release(self) -> None:
        self._stop.set()
        latest = current_lease(self.root, self.storage_options)
        if latest is not None and latest["token"] == self.token:
            self.record.update(released=time.time(), heartbeat=time.time())
            self._write()


def acquire(root: str, *, pipeline: str, takeover_after: float = DEFAULT_TAKEOVER_AFTER,
            wait: float = 0.0, storage_options: dict[str, Any] | None = None) -> Lease:
    """Take the lease on ``root``, waiting up to ``wait`` seconds for a live holder;
    :class:`LeaseHeld` names the holder and its age if it is still held."""
    fs, folder = _filesystem(root, storage_options)
    deadline = time.monotonic() + wait
    while True:
        latest = current_lease(root, storage_options)
        now = time.time()
        free = latest is None or latest.get("released") or \
            now - float(latest.get("heartbeat", 0)) > takeover_after
        if free:
            token = 1 if latest is None else latest["token"] + 1
            record = {"owner": getpass.getuser(), "host": socket.gethostname(),
                      "pid": os.getpid(), "pipeline": pipeline, "started": now,
                      "heartbeat": now,
                      "took_over": None if latest is None or latest.get("released")
                      else latest["token"]}
            if _create_exclusive(fs, f"{folder}/{_name(token)}", json.dumps(record).encode()):
                lease = Lease(root, token, record, max(takeover_after / 10, 0.5),
                              storage_options)
                threading.Thread(target=lease._beat, name="suanli-etl-lease",
                                 daemon=True).start()
                return lease
            continue  # another run took that number first: look again
        if time.monotonic() >= deadline:
            assert latest is not None
            age = now - float(latest.get("started", now))
            quiet = now - float(latest.get("heartbeat", now))
            raise LeaseHeld(
                f"another ETL run holds the lease on {root}: token {latest['token']}, "
                f"{latest.get('pipeline')} by {latest.get('owner')} on {latest.get('host')} "
                f"(pid {latest.get('pid')}), started {age:.0f} s ago, last heartbeat "
                f"{quiet:.0f} s ago; it is taken over once its heartbeat is "
                f"{takeover_after:g} s old. Wait for it (--wait) or try later")
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0.05)))


@contextlib.contextmanager
def held(root: str, **options: Any) -> Iterator[Lease]:
    """:func:`acquire` for the block, released after it."""
    lease = acquire(root, **options)
    try:
        yield lease
    finally:
        lease.release()
