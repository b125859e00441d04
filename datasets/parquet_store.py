"""Writing panels as Parquet folders, atomically, with a manifest.

The panel is written wide (``unit, time`` and one column per channel, plus
``label`` when per unit or per time), one file per chunk of units, written in
parallel into a hidden staging folder that is moved into place once complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from .atomic import LocalOutput, output_for
from .compute import compute
from .panel import sample_rate, validate
from .timeaxis import has_calendar_times, timestamps


def _write_part(signal: np.ndarray, units: np.ndarray, times: np.ndarray,
                channels: list[str], labels: np.ndarray | None, path: str,
                mapping: dict[str, Any], storage_options: dict[str, Any]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_units, n_times, _ = signal.shape
    columns: dict[str, Any] = {
        "unit": np.repeat(units, n_times),
        "time": np.tile(times, n_units),
    }
    for i, name in enumerate(channels):
        columns[name] = signal[:, :, i].ravel()
    if labels is not None:
        columns["label"] = (np.repeat(labels, n_times) if labels.ndim == 1
                            else labels.ravel())
    table = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)
    # How to read the table back as the same panel (see tables.SUANLI_METADATA).
    metadata = {**(table.schema.metadata or {}), b"suanli": json.dumps(mapping).encode()}
    import fsspec

    with fsspec.open(path, "wb", **storage_options) as handle:
        pq.write_table(table.replace_schema_metadata(metadata), handle)
    return int(n_units)


def write_parquet(ds: xr.Dataset, path: str | Path, *, overwrite: bool = False,
                  progress: bool = False, storage_options: dict[str, Any] | None = None
                  ) -> Path | str:
    """Write panel ``ds`` to the folder ``path`` as Parquet files, atomically."""
    ds = validate(ds)
    output = output_for(path, overwrite=overwrite, storage_options=storage_options)
    if isinstance(output, LocalOutput):
        output.staging.mkdir()
    try:
        signal = ds["signal"].data
        if not hasattr(signal, "to_delayed"):
            import dask.array as da

            signal = da.from_array(np.asarray(signal))
        signal = signal.rechunk({1: -1, 2: -1})  # whole units per file
        times = timestamps(ds) if has_calendar_times(ds) else ds["time"].values
        if not np.issubdtype(times.dtype, np.datetime64):
            # Seconds, so a reader recovers the sample rate from the spacing.
            times = np.arange(len(times)) / sample_rate(ds)
        units = ds["unit"].values
        channels = [str(c) for c in ds["channel"].values]
        labels = np.asarray(ds["label"].values) if "label" in ds.variables else None
        mapping: dict[str, Any] = {"unit": "unit", "time": "time", "channels": channels,
                                   "layout": "wide", "label": "label" if labels is not None
                                   else None}
        if "sample_rate" in ds["time"].attrs or not np.issubdtype(times.dtype, np.datetime64):
            mapping["sample_rate"] = sample_rate(ds)
        parts = []
        start = 0
        for index, block in enumerate(signal.to_delayed().ravel()):
            size = signal.chunks[0][index]
            part_labels = labels[start:start + size] if labels is not None else None
            parts.append(dask.delayed(_write_part)(
                block, units[start:start + size], times, channels, part_labels,
                f"{output.staging_location}/part-{index:05d}.parquet", mapping,
                output.storage_options))
            start += size
        compute(*parts, progress=progress, label=f"writing {output.name}")
        committed = output.commit("parquet")
    finally:
        output.discard()
    return committed
