"""How big a chunk should be: big enough to amortise Dask's per-task cost, small
enough that a worker never runs out of memory.

Through the distributed scheduler a task costs about 2 ms of overhead on the
machines suanli targets, and a pipeline runs about ten tasks per input chunk.
At 48 MiB per chunk the work per task is ~70 ms, so the overhead stays a few
percent (12 MiB chunks made feature extraction 1.55x slower). A worker holds a
few chunks per thread at once (input, overlap, intermediates), so chunks are
also capped at a fraction of a worker's memory. Override with the Dask config
key ``suanli.datasets.chunk-size`` or the ``chunk_bytes`` argument.
"""

from __future__ import annotations

import math

import dask.array as da
import dask.config
import xarray as xr
from dask.utils import parse_bytes

DEFAULT_CHUNK_BYTES = 48 * 2**20
#: Chunks in flight per worker thread that a pipeline may hold at once.
CHUNKS_IN_FLIGHT = 8


def target_chunk_bytes(worker_memory: int | None = None, threads_per_worker: int = 1) -> int:
    """The chunk size to aim for, capped so a worker's threads fit in its memory."""
    configured = dask.config.get("suanli.datasets.chunk-size", default=None)
    target = parse_bytes(configured) if configured else DEFAULT_CHUNK_BYTES
    if worker_memory:
        target = min(target, worker_memory // (CHUNKS_IN_FLIGHT * max(1, threads_per_worker)))
    return max(1 << 20, int(target))


def panel_chunks(units: int, samples: int, channels: int, itemsize: int,
                 chunk_bytes: int | None = None) -> dict[str, int]:
    """Chunks for a (unit, time, channel) panel: whole channels, long time runs.

    Time is split first (features work along time within a unit); several
    short units share a chunk when one unit is smaller than the target.
    """
    target = chunk_bytes or target_chunk_bytes()
    per_unit = max(1, samples * channels * itemsize)
    if per_unit >= target:
        time_chunk = max(1, target // (channels * itemsize))
        return {"unit": 1, "time": min(samples, time_chunk), "channel": channels}
    units_per_chunk = max(1, min(units, math.floor(target / per_unit)))
    return {"unit": units_per_chunk, "time": samples, "channel": channels}


def dask_array(variable: xr.DataArray) -> da.Array:
    """The Dask array behind ``variable``; in-memory data is wrapped in one chunk per unit."""
    data = variable.data
    if isinstance(data, da.Array):
        return data
    chunks = {i: (1 if dim == "unit" else -1) for i, dim in enumerate(variable.dims)}
    return da.from_array(data, chunks=chunks)
