"""What the batch system says about a cluster's worker jobs (SLURM).

dask-jobqueue submits the jobs and then only logs what goes wrong: a refused
submission is an "Exception in callback" in the log, a job SLURM will never run
stays pending, and a worker that dies in its job is simply absent. The client
would wait its whole start-up timeout and say only how many workers joined. This
module asks SLURM instead, so a start fails within seconds quoting SLURM's reason:

- :func:`refused_submission`: ``sbatch --test-only`` on the job script, before any
  job is submitted (an unknown partition, more memory or cores than any node has);
- :func:`worker_trouble`: the state and reason of each submitted job, and whether
  it can still start (``squeue``; ``scontrol`` for jobs that already ended, with
  the end of their error log).
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

#: squeue reasons meaning a pending job will never start without someone changing
#: the job or the cluster (``man squeue``, JOB REASON CODES).
HOPELESS_REASONS = frozenset({
    "PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "PartitionDown",
    "PartitionInactive", "ReqNodeNotAvail", "BadConstraints", "InvalidQOS",
    "InvalidAccount", "QOSJobLimit", "AccountNotAllowed", "JobHeldAdmin", "JobHeldUser",
    "DependencyNeverSatisfied", "NodeDown", "FrontEndDown", "InactiveLimit",
})
#: Job states after which the job's worker is gone.
ENDED_STATES = frozenset({"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                          "BOOT_FAIL", "DEADLINE", "PREEMPTED", "COMPLETED", "REVOKED"})


def _run(command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30,
                          check=False)


def refused_submission(job_script: str) -> str | None:
    """SLURM's reason for refusing ``job_script`` (``sbatch --test-only``), or None."""
    try:
        done = _run(["sbatch", "--test-only"], stdin=job_script)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"sbatch --test-only could not run: {error}"
    if done.returncode == 0:
        return None
    return "; ".join(line.strip() for line in done.stderr.splitlines() if line.strip()) or \
        f"sbatch --test-only exited with {done.returncode}"


def job_ids(dask_cluster: Any) -> list[str]:
    """The batch job ids of a dask-jobqueue cluster's jobs that were submitted."""
    jobs = getattr(dask_cluster, "workers", {}) or {}
    return [str(job.job_id) for job in jobs.values() if getattr(job, "job_id", None)]


def job_states(ids: list[str]) -> dict[str, dict[str, str]]:
    """Per job id: ``state``, ``reason`` and, for a job that ended, ``stderr`` (its
    error log's path)."""
    if not ids:
        return {}
    states: dict[str, dict[str, str]] = {}
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        done = _run(["squeue", "--noheader", f"--jobs={','.join(ids)}", "--format=%i|%T|%r"])
        for line in done.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                states[parts[0]] = {"state": parts[1], "reason": parts[2]}
    for job in ids:
        if job not in states:  # left the queue: ask for its record while SLURM keeps it
            states[job] = _ended_job(job)
    return states


def _ended_job(job: str) -> dict[str, str]:
    try:
        done = _run(["scontrol", "--oneliner", "show", "job", job])
    except (OSError, subprocess.TimeoutExpired):
        return {"state": "UNKNOWN", "reason": "scontrol could not run"}
    fields = dict(part.split("=", 1) for part in done.stdout.split() if "=" in part)
    # SLURM keeps the path as given, with its patterns (%j: the job id, %x: its name).
    stderr = fields.get("StdErr", "")
    for pattern, value in (("%j", job), ("%J", job), ("%x", fields.get("JobName", "")),
                           ("%N", fields.get("BatchHost", "")), ("%%", "%")):
        stderr = stderr.replace(pattern, value)
    return {"state": fields.get("JobState", "UNKNOWN"), "reason": fields.get("Reason", ""),
            "stderr": stderr}


def worker_trouble(dask_cluster: Any) -> tuple[str | None, str]:
    """``(fatal, summary)``: why the jobs' workers will never all join (None while they
    still may), and one line of what SLURM says about each job."""
    states = job_states(job_ids(dask_cluster))
    summary = ", ".join(f"job {job} {s['state'].lower()}"
                        + (f" ({s['reason']})" if s.get("reason") not in (None, "", "None")
                           else "") for job, s in states.items()) or "no job submitted yet"
    for job, state in states.items():
        if state["state"] == "PENDING" and state["reason"] in HOPELESS_REASONS:
            return (f"SLURM will not start job {job}: it is pending with reason "
                    f"{state['reason']!r} (squeue)"), summary
        if state["state"] in ENDED_STATES:
            return (f"job {job} ended ({state['state']}"
                    + (f", {state['reason']}" if state.get("reason") not in ("", "None")
                       else "") + ") before its worker joined"
                    + _log_tail(state.get("stderr", ""))), summary
    return None, summary


def _log_tail(path: str, lines: int = 5) -> str:
    if not path or not Path(path).is_file():
        return ""
    tail = Path(path).read_text(errors="replace").strip().splitlines()[-lines:]
    return f"; the end of its log {path}:\n  " + "\n  ".join(tail) if tail else ""
