"""The ``local`` kind: distributed's LocalCluster, bound to loopback."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .backends import scheduler_options, worker_settings
from .errors import ClusterSpecError
from .kinds import Launch

if TYPE_CHECKING:
    from distributed import LocalCluster

    from .spec import ClusterSpec


def default_layout(cores: int) -> tuple[int, int]:
    """Workers and threads per worker for ``cores`` cores.

    Numeric code mostly releases the GIL, but pure-Python parts of steps do not,
    so use processes: one worker per core on small machines (a 2-core laptop
    gets 2 x 1), and about sqrt(cores) workers on big ones (64 cores: 8 x 8),
    as distributed does.
    """
    from distributed.deploy.utils import nprocesses_nthreads

    workers, threads = nprocesses_nthreads(max(cores, 1))
    return workers, threads


def local_arguments(spec: ClusterSpec) -> dict[str, Any]:
    """LocalCluster's keyword arguments for ``spec``."""
    cores = os.cpu_count() or 1
    default_workers, default_threads = default_layout(cores)
    workers = spec.workers or default_workers
    threads = spec.threads_per_worker or (
        default_threads if spec.workers is None else max(1, cores // workers)
    )
    kwargs: dict[str, Any] = {
        "n_workers": workers,
        "threads_per_worker": threads,
        "memory_limit": spec.memory_limit,
        "host": spec.host,
        # Left to distributed, the dashboard listens on every interface
        # (":8787"); the spec always names the interface. None turns it off.
        "dashboard_address": spec.dashboard_address,
        "processes": True,
    }
    if scheduler_options(spec):
        kwargs["scheduler_kwargs"] = scheduler_options(spec)
    return kwargs


def validate(spec: ClusterSpec) -> None:
    """Threads this machine can run: at most four per core."""
    cores = os.cpu_count() or 1
    if spec.threads_per_worker is not None and spec.threads_per_worker > 4 * cores:
        raise ClusterSpecError("threads_per_worker", spec.threads_per_worker,
                               f"at most {4 * cores} (4x the {cores} cores here)")


def launch(spec: ClusterSpec) -> Launch:
    return Launch("distributed.LocalCluster", local_arguments(spec),
                  notes=_notes(spec))


def _notes(spec: ClusterSpec) -> tuple[str, ...]:
    notes = [f"scheduler, workers and dashboard listen on {spec.host} only"]
    if spec.environment:
        notes.append("environment is set in each worker process before it starts: "
                     + ", ".join(sorted(spec.environment)))
    if spec.config:
        notes.append("Dask config given to the workers: " + ", ".join(sorted(spec.config)))
    return tuple(notes)


def start(spec: ClusterSpec) -> LocalCluster:
    """Start a LocalCluster for ``spec``; scheduler, workers and dashboard on ``spec.host``."""
    from distributed import LocalCluster

    with worker_settings(spec):
        return LocalCluster(**local_arguments(spec))
