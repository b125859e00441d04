"""``suanli cluster up`` and ``down``: a long-running TLS scheduler with workers.

``up`` starts distributed's own ``dask scheduler`` and ``dask worker``
programs as background processes (they outlive the command), with TLS
required, waits until the workers have joined, and records them so ``list``
and ``down`` find them. Users then reach the cluster with a ``shared`` profile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from dask.utils import parse_timedelta

from . import registry
from .backends import worker_environment
from .batch_service import BATCH_KINDS, cancel_jobs, stop_service, up_batch
from .errors import ClusterError
from .shared import tls_paths
from .spec import ClusterSpec

#: distributed's CLI modules: only processes running these are ever signalled.
SCHEDULER_MODULE = "distributed.cli.dask_scheduler"
WORKER_MODULE = "distributed.cli.dask_worker"


def _tls_arguments(spec: ClusterSpec) -> list[str]:
    if spec.tls is None:
        return []
    files = tls_paths(spec)
    return ["--tls-ca-file", files["ca_file"], "--tls-cert", files["cert"],
            "--tls-key", files["key"]]


def scheduler_command(spec: ClusterSpec) -> list[str]:
    """The ``dask scheduler`` command line for a shared spec."""
    assert spec.address is not None
    parts = urlsplit(spec.address if "://" in spec.address else f"tcp://{spec.address}")
    command = [sys.executable, "-m", SCHEDULER_MODULE, "--host", parts.hostname or "",
               "--port", str(parts.port or 8786), "--protocol", parts.scheme,
               *_tls_arguments(spec)]
    # The scheduler serves /health and /metrics over HTTP even without the
    # dashboard, on every interface unless given an address.
    if spec.dashboard_address is None:
        command += ["--no-dashboard", "--dashboard-address", f"{parts.hostname}:0"]
    else:
        command += ["--dashboard-address", spec.dashboard_address]
    if spec.idle_timeout is not None:
        command += ["--idle-timeout", spec.idle_timeout]
    return command


def worker_command(spec: ClusterSpec, workers: int) -> list[str]:
    """The ``dask worker`` command line: ``workers`` processes on the scheduler's host."""
    assert spec.address is not None
    host = urlsplit(spec.address if "://" in spec.address else f"tcp://{spec.address}").hostname
    command = [sys.executable, "-m", WORKER_MODULE, spec.address, "--host", host or "",
               "--nworkers", str(workers), "--nthreads", str(spec.threads_per_worker or 1),
               # Workers serve /health and /metrics over HTTP, on every interface
               # unless given an address; their dashboard is off.
               "--no-dashboard", "--dashboard-address", f"{host}:0", *_tls_arguments(spec)]
    if spec.memory_limit is not None:
        command += ["--memory-limit", str(spec.memory_limit)]
    return command


def up(spec: ClusterSpec, workers: int, profile: str | None = None) -> registry.ClusterRecord:
    """Start a scheduler and ``workers`` workers for a shared spec, or a scheduler here and
    ``workers`` batch-job workers for a slurm or pbs spec; return their record."""
    if spec.kind in BATCH_KINDS:
        return up_batch(spec, workers, profile)
    if spec.kind != "shared":
        raise ClusterError(f"`suanli cluster up` starts shared and batch (slurm, pbs) "
                           f"clusters; this profile's kind is {spec.kind!r} (use `suanli run "
                           f"--cluster` for it)")
    for role, path in tls_paths(spec).items():
        if not Path(path).is_file():
            raise ClusterError(f"tls.{role}: no such file {path!r} (make a set with "
                               "`suanli cluster certs DIR`)")
    record_id = registry.new_id("shared")
    logs = registry.state_directory() / record_id
    logs.mkdir(parents=True, exist_ok=True)
    timeout = parse_timedelta(spec.startup_timeout)
    env = {**os.environ, **worker_environment(spec)}
    started: list[subprocess.Popen[bytes]] = []
    try:
        scheduler = _spawn(scheduler_command(spec), logs / "scheduler.log", env)
        started.append(scheduler)
        _wait_for_line(scheduler, logs / "scheduler.log", "Scheduler at:", timeout)
        if workers:
            started.append(_spawn(worker_command(spec, workers), logs / "workers.log", env))
            _wait_for_workers(spec, workers, started, logs, timeout)
    except BaseException:
        for process in started:
            _stop(process.pid)
        raise
    record = registry.ClusterRecord(
        id=record_id, kind="shared", scheduler_address=spec.address or "",
        dashboard_link=_dashboard_link(logs / "scheduler.log"),
        owner_pid=None, pids=tuple(p.pid for p in started), profile=profile,
        tls=tls_paths(spec) or None)
    registry.save(record)
    return record


def down(record: registry.ClusterRecord, timeout: float = 15.0) -> None:
    """Stop a cluster suanli started: its own processes, or its owner's scheduler; for a
    batch cluster, the process holding it (which cancels its jobs), then any job left."""
    if record.batch_job_name is not None:
        if record.owner_pid is not None:
            stop_service(record.owner_pid)
        cancel_jobs(record.batch_job_name)
        registry.forget(record.id)
        shutil.rmtree(registry.state_directory() / record.batch_job_name, ignore_errors=True)
        return
    if record.pids:
        for pid in record.pids:
            _stop(pid, timeout)
    elif record.owner_pid is not None:
        _shutdown_scheduler(record)
    registry.forget(record.id)
    shutil.rmtree(registry.state_directory() / record.id, ignore_errors=True)  # its logs


def _shutdown_scheduler(record: registry.ClusterRecord) -> None:
    from distributed import Client
    from distributed.security import Security

    security = None
    if record.tls:
        security = Security(tls_ca_file=record.tls["ca_file"],
                            tls_client_cert=record.tls["cert"],
                            tls_client_key=record.tls["key"], require_encryption=True)
    with contextlib.suppress(OSError, TimeoutError):
        client = Client(record.scheduler_address, security=security, timeout=10)
        client.shutdown()


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        # A session of its own: the processes outlive this command and its terminal.
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _dashboard_link(log: Path) -> str | None:
    """The dashboard URL the scheduler reported (its real port, when 0 was asked for)."""
    for line in log.read_text(errors="replace").splitlines():
        if "dashboard at:" in line:
            return line.split("dashboard at:")[1].strip()
    return None


def _tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n  ".join(text.strip().splitlines()[-lines:])


def _wait_for_line(process: subprocess.Popen[bytes], log: Path, marker: str,
                   timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise ClusterError(f"the scheduler exited with code {process.returncode}:\n  "
                               + _tail(log))
        time.sleep(0.1)
    raise ClusterError(f"the scheduler did not start within {timeout:g} s:\n  " + _tail(log))


def _wait_for_workers(spec: ClusterSpec, workers: int, started: list[subprocess.Popen[bytes]],
                      logs: Path, timeout: float) -> None:
    from distributed import Client

    from .shared import security_for

    with Client(spec.address, security=security_for(spec), timeout=timeout) as client:
        deadline = time.monotonic() + timeout
        while len(client.scheduler_info(n_workers=-1)["workers"]) < workers:
            if started[-1].poll() is not None or time.monotonic() > deadline:
                raise ClusterError("the workers did not join the scheduler:\n  "
                                   + _tail(logs / "workers.log"))
            time.sleep(0.2)


def _is_ours(pid: int) -> bool:
    """True when ``pid`` runs one of distributed's programs (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(m.encode() in cmdline for m in (SCHEDULER_MODULE, WORKER_MODULE))


def _stop(pid: int, timeout: float = 15.0) -> None:
    registry.terminate(pid, _is_ours, timeout)
