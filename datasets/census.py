"""Derived data written, and its input's values counted, in one pass over the input.

A pipeline writes what it derives from its input (features) and reports the
input's NaN and inf (a :class:`~.values.ValueReport`). Computed one after the
other, the input is read, or generated, twice. Computed together, Dask would
still do it twice: its fusion folds the input's chunk tasks into the first
step that reads them, renaming them, so the census (which reads the input by
its own keys) finds nothing to share. Here the input's chunk tasks live in a
plain graph layer of their own, which is never folded, and low-level fusion is
off for the write, so each input chunk is made once and read by both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import xarray as xr
from dask.highlevelgraph import HighLevelGraph

from .compute import compute
from .feature_table import prepare_feature_table
from .values import ValueReport, lazy_value_report
from .zarr_store import prepare_zarr


def write_with_value_census(ds: xr.Dataset, derive: Callable[[xr.Dataset], xr.Dataset],
                            path: str | Path, *, variable: str = "signal",
                            progress: bool = False, label: str | None = None,
                            storage_options: dict[str, Any] | None = None,
                            format: str = "zarr") -> tuple[Path | str, ValueReport]:
    """Write ``derive(ds)`` to ``path`` (Zarr, or a Parquet feature table, atomically, as
    :func:`~suanli.datasets.write`) and count the NaN and inf of ``ds[variable]``,
    reading each input chunk once.

    Returns where the output is and the input's value report. Nothing is
    published unless both succeed.
    """
    shared = _with_shared_chunks(ds)
    derived = derive(shared)
    census = lazy_value_report(shared, variable)
    with dask.config.set({"optimization.fuse.active": False}):
        prepare = prepare_feature_table if format == "parquet" else prepare_zarr
        pending = prepare(derived, path, storage_options=storage_options)
    try:
        _, report = compute(pending.delayed, census, progress=progress,
                            label=label or f"writing {pending.output.name}")
        return pending.commit(), report
    finally:
        pending.discard()


def _with_shared_chunks(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with each Dask variable's chunk tasks in a plain graph layer of their own
    (a materialised layer, which blockwise fusion never folds into a later one)."""
    shared = {}
    for name, array in ds.data_vars.items():
        data = array.data
        if isinstance(data, da.Array):
            graph = HighLevelGraph.from_collections(data.name, dict(data.__dask_graph__()))
            shared[name] = array.copy(data=da.Array(graph, data.name, data.chunks,
                                                    meta=data._meta))
    return ds.assign(shared)
