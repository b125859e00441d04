"""A spec changed to start a given number of workers in all, whatever its kind.

What ``workers`` means differs by kind (per host for ssh, one per GPU for
local-cuda, in all elsewhere); :func:`with_workers` hides that, for tools that
compare one pipeline on clusters of several sizes (``suanli bench scaling``).
"""

from __future__ import annotations

import dataclasses

from .errors import ClusterSpecError, ClusterUsageError
from .spec import ClusterSpec, validate


def with_workers(spec: ClusterSpec, workers: int) -> ClusterSpec:
    """``spec`` changed so that starting it gives exactly ``workers`` workers.

    - ssh: the workers are spread over the hosts in turn (the first hosts get one
      more when they do not divide evenly); hosts left without one are dropped.
    - local-cuda (and ``auto`` where it chooses local-cuda): the first ``workers``
      GPUs, one worker each.
    - shared: refused; its workers are started by whoever runs it, not by suanli.
    - every other kind: ``workers`` in all.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ClusterSpecError("workers", workers, "a whole number >= 1")
    kind = spec.kind
    if kind == "auto":
        from .auto import chosen_kind

        kind = chosen_kind()
    if kind == "shared":
        raise ClusterUsageError(
            "a shared cluster's workers are started by whoever runs it, not by suanli, so "
            "it cannot be resized point by point; measure on a kind suanli starts (local, "
            "ssh, slurm, ...), or start a cluster of each size with 'suanli cluster up "
            "PROFILE --workers K' and run at each size")
    if kind == "local-cuda":
        return validate(dataclasses.replace(spec, kind=kind, gpus=workers))
    if kind == "ssh":
        return _spread_over_hosts(spec, workers)
    return validate(dataclasses.replace(spec, kind=kind, workers=workers))


def _spread_over_hosts(spec: ClusterSpec, workers: int) -> ClusterSpec:
    entries = spec.host_entries()
    if not entries:
        raise ClusterSpecError("hosts", [], "at least one worker host for the ssh kind")
    if any(entry["gpus"] for entry in entries):
        raise ClusterUsageError(
            "an ssh cluster with GPU hosts starts one worker per GPU; give a spec of CPU "
            "hosts (gpus: 0) to resize it by workers")
    share, extra = divmod(workers, len(entries))
    counts = [share + (1 if i < extra else 0) for i in range(len(entries))]
    hosts = tuple({**entry, "workers": count}
                  for entry, count in zip(entries, counts, strict=True) if count)
    # The scheduler stays where it was, even when its host gets no worker.
    address = spec.address or str(entries[0]["address"])
    return validate(dataclasses.replace(spec, hosts=hosts, address=address, workers=None))
