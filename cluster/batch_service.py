"""``suanli cluster up`` for the batch kinds (slurm, pbs): the scheduler where the
command runs, the workers as batch jobs, in the background.

``up`` starts this module as a background process that starts the cluster exactly
as ``cluster.start`` does (the submission checked first, the jobs awaited with the
batch system's reasons), records it for ``list`` and ``down``, and holds it until
``down`` sends it SIGTERM; closing it cancels the jobs. The jobs carry the cluster's
name (``job_name``), so ``list`` shows them and ``down`` cancels any left over.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask.config
from dask.utils import parse_timedelta

from . import registry
from .errors import ClusterError
from .spec import ClusterSpec, validate

BATCH_KINDS = ("slurm", "pbs")
SERVICE_MODULE = "suanli.cluster.batch_service"
#: Seconds ``up`` waits beyond the spec's start-up timeout (the scheduler's own start).
SLACK = 30.0


def up_batch(spec: ClusterSpec, workers: int, profile: str | None = None
             ) -> registry.ClusterRecord:
    """Start a scheduler here and ``workers`` workers as batch jobs, in the background."""
    job_name = str(spec.options.get("job_name") or registry.new_id(spec.kind))
    spec = spec.replace(workers=workers, options={**spec.options, "job_name": job_name})
    folder = registry.state_directory() / job_name
    folder.mkdir(parents=True, exist_ok=True)
    # The service records the cluster where this process's config says (not its own).
    (folder / "spec.json").write_text(json.dumps({
        "spec": spec.to_dict(), "profile": profile,
        "state_directory": str(registry.state_directory())}))
    log = folder / "service.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", SERVICE_MODULE, str(folder)],
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    ready = folder / "ready.json"
    deadline = time.monotonic() + parse_timedelta(spec.startup_timeout) + SLACK
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_service(process.pid)
            tail = "\n  ".join(log.read_text(errors="replace").strip().splitlines()[-10:])
            raise ClusterError(f"the {spec.kind} cluster did not start:\n  {tail}")
        time.sleep(0.2)
    state = json.loads(ready.read_text())
    if "error" in state:
        process.wait(timeout=30)
        raise ClusterError(state["error"])
    record = registry.find(state["id"])
    if record is None:
        stop_service(process.pid)
        raise ClusterError(f"the {spec.kind} cluster started but left no record")
    return record


def cancel_jobs(job_name: str) -> None:
    """Cancel any SLURM job left with ``job_name`` (its holder died, say)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(["scancel", f"--name={job_name}"], capture_output=True, timeout=30,
                       check=False)


def jobs_of(job_name: str) -> list[tuple[str, str]]:
    """``(job id, state)`` of the batch jobs named ``job_name`` (SLURM's squeue)."""
    try:
        done = subprocess.run(["squeue", "--noheader", f"--name={job_name}", "--format=%i %T"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [tuple(line.split()[:2]) for line in done.stdout.splitlines()  # type: ignore[misc]
            if len(line.split()) >= 2]


def is_service(pid: int) -> bool:
    """True when ``pid`` runs this module (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return SERVICE_MODULE.encode() in cmdline


def stop_service(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM the service holding a cluster and wait until it has closed it."""
    registry.terminate(pid, is_service, timeout)


def _serve(folder: Path) -> int:
    """The background process: start, record, hold until SIGTERM, close."""
    from .handle import Cluster

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    given = json.loads((folder / "spec.json").read_text())
    dask.config.set({"suanli.cluster.state-directory": given["state_directory"]})
    data = given["spec"]
    spec = validate(ClusterSpec(**{**data, "hosts": tuple(data.get("hosts") or ())}))
    ready = folder / "ready.json"
    try:
        started = Cluster.start(spec, profile=given.get("profile"))
    except Exception as error:  # reported to `up`, which raises it
        ready.write_text(json.dumps({"error": str(error)}))
        return 1
    ready.write_text(json.dumps({"id": started.record_id}))
    try:
        stop.wait()
    finally:
        started.close()
        cancel_jobs(str(spec.options["job_name"]))
    return 0


if __name__ == "__main__":
    sys.exit(_serve(Path(sys.argv[1])))
