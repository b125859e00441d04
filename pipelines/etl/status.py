"""``suanli etl status ROOT``: every partition's state, read from storage alone."""

from __future__ import annotations

import time
from typing import Any

from .lease import DEFAULT_TAKEOVER_AFTER, current_lease
from .state import stored_partitions


def etl_status(root: str, storage_options: dict[str, Any] | None = None,
               takeover_after: float = DEFAULT_TAKEOVER_AFTER) -> dict[str, Any]:
    """The partitions under ``root`` (done, with their manifests' facts, or failed, with
    the error), the counts, the last partition written and the current lease (``held``,
    ``released``, or ``stale``: its heartbeat stopped, so the next run takes it over)."""
    partitions = []
    for found in stored_partitions(root, storage_options):
        if "manifest" in found:
            manifest = found["manifest"]
            partitions.append({"partition": found["folder"], "state": "done",
                               "key": manifest.get("partition"),
                               "pipeline": manifest.get("pipeline"),
                               "finished": manifest.get("finished"),
                               "seconds": manifest.get("timings", {}).get("total"),
                               "inputs": len(manifest.get("inputs", []))})
        else:
            failure = found["failure"]
            partitions.append({"partition": found["folder"], "state": "failed",
                               "key": failure.get("key"), "error": failure.get("error"),
                               "finished": failure.get("failed")})
    counts: dict[str, int] = {}
    for partition in partitions:
        counts[partition["state"]] = counts.get(partition["state"], 0) + 1
    finished = [p for p in partitions if p.get("finished")]
    last = max(finished, key=lambda p: p["finished"]) if finished else None
    lease = current_lease(root, storage_options)
    if lease is not None:
        age = time.time() - float(lease.get("heartbeat", 0))
        lease["heartbeat_age"] = age
        lease["state"] = "released" if lease.get("released") else \
            "stale" if age > takeover_after else "held"
    return {"root": root, "counts": counts, "last": last, "lease": lease,
            "partitions": partitions}
