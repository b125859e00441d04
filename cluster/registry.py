"""The clusters suanli started, so ``suanli cluster list`` and ``down`` can find them.

One small JSON file per cluster in ``suanli.cluster.state-directory`` (Dask
config; default ``$XDG_STATE_HOME/suanli/clusters``). A record names the
process that owns the cluster and any processes started for it; records whose
processes are all gone are dropped when listed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dask.config

from suanli.processes import pid_alive


@dataclass(frozen=True)
class ClusterRecord:
    """One cluster started by suanli."""

    id: str
    kind: str
    scheduler_address: str
    dashboard_link: str | None
    #: The process holding the cluster (a notebook, a ``suanli run``), if any.
    owner_pid: int | None
    #: Processes started for the cluster (``suanli cluster up``), stopped by ``down``.
    pids: tuple[int, ...] = ()
    started: float = field(default_factory=time.time)
    profile: str | None = None
    #: TLS files a client needs to reach the scheduler, when it uses TLS.
    tls: dict[str, str] | None = None
    #: Batch kinds: the name its worker jobs carry (``squeue --name``).
    batch_job_name: str | None = None

    def alive(self) -> bool:
        pids = [p for p in (self.owner_pid, *self.pids) if p is not None]
        return any(pid_alive(p) for p in pids)


def state_directory() -> Path:
    configured = dask.config.get("suanli.cluster.state-directory", default=None)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "suanli" / "clusters"


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def save(record: ClusterRecord) -> Path:
    folder = state_directory()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.id}.json"
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(asdict(record), indent=2))
    staging.replace(path)  # a reader never sees half a record
    return path


def forget(record_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state_directory() / f"{record_id}.json").unlink()


def records() -> list[ClusterRecord]:
    """Clusters still running, oldest first; records of dead ones are removed."""
    folder = state_directory()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            record = ClusterRecord(**{**data, "pids": tuple(data.get("pids", ()))})
        except (ValueError, TypeError):
            continue  # a file that is not ours
        if record.alive():
            found.append(record)
        else:
            forget(record.id)
    return sorted(found, key=lambda r: r.started)


def find(record_id: str) -> ClusterRecord | None:
    return next((r for r in records() if r.id == record_id), None)


def terminate(pid: int, recognised: Callable[[int], bool], timeout: float = 15.0) -> None:
    """SIGTERM ``pid`` if ``recognised(pid)`` says it is one of ours (pids get reused),
    wait up to ``timeout`` for it to exit, then SIGKILL it."""
    if not recognised(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and recognised(pid) and pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
        time.sleep(0.1)
    if recognised(pid) and pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
