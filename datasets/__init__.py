"""Open, generate, validate and write data as lazy, Dask-backed xarray datasets.

>>> from suanli import datasets
>>> ds = datasets.open("synthetic://telemetry?units=10&minutes=5&seed=0")  # doctest: +SKIP
>>> datasets.write(ds, "telemetry.zarr")                                   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.config
import xarray as xr
import yaml

from .atomic import Output, output_for
from .building import from_arrays
from .catalog import catalog
from .census import write_with_value_census
from .chunking import dask_array, panel_chunks, target_chunk_bytes
from .compute import compute
from .errors import DatasetError, SuanliError
from .feature_table import prepare_feature_table
from .formats import Format, known_formats, register_format
from .generators import generator_names
from .manifest import Verification, file_crc32c, file_digest, verify, written_checksums
from .opening import open
from .panel import sample_rate, text_values, validate
from .parquet_store import write_parquet
from .progress import progress_steps, progress_style
from .retrying import read_with_retries
from .storage import is_local, local_output
from .tables import from_frame
from .timeaxis import epoch_units, has_calendar_times, timestamps
from .values import ValueReport, check_values, value_report
from .zarr_store import write_zarr

__all__ = [
    "DatasetError",
    "Format",
    "Output",
    "SuanliError",
    "ValueReport",
    "Verification",
    "catalog",
    "check_values",
    "compute",
    "dask_array",
    "epoch_units",
    "file_crc32c",
    "file_digest",
    "from_arrays",
    "from_frame",
    "generate",
    "generator_names",
    "has_calendar_times",
    "is_local",
    "known_formats",
    "local_output",
    "open",
    "output_for",
    "panel_chunks",
    "progress_steps",
    "progress_style",
    "read_with_retries",
    "register_format",
    "sample_rate",
    "target_chunk_bytes",
    "text_values",
    "timestamps",
    "validate",
    "value_report",
    "verify",
    "write",
    "write_with_value_census",
    "written_checksums",
]


# Package defaults join Dask's config; values are read when used, so user config wins.
dask.config.update_defaults(
    yaml.safe_load((Path(__file__).parent / "datasets.yaml").read_text()))


def write(ds: xr.Dataset, path: str | Path, *, overwrite: bool = False,
          progress: bool = False, format: str | None = None,
          storage_options: dict[str, Any] | None = None) -> Path | str:
    """Write ``ds`` atomically: the output appears complete or not at all.

    Zarr by default; a path ending in ``.parquet`` (or ``format="parquet"``)
    writes a folder of Parquet files: a panel (``signal``) as its readings,
    anything else (features) as a table with a row per unit and window
    (:mod:`.feature_table`). Either way a manifest of
    checksums goes with it, for :func:`verify`. ``path`` may be local or an
    object-storage URL (``s3://bucket/out.zarr``, with fsspec's
    ``storage_options``); returns the local Path, or the URL.
    """
    kind = format or ("parquet" if str(path).endswith((".parquet", ".pq")) else "zarr")
    if kind == "parquet" and "signal" not in ds:
        return prepare_feature_table(ds, path, overwrite=overwrite,
                                     storage_options=storage_options).complete(progress=progress)
    if kind == "parquet":
        return write_parquet(ds, path, overwrite=overwrite, progress=progress,
                             storage_options=storage_options)
    if kind != "zarr":
        raise DatasetError(f"format must be 'zarr' or 'parquet', not {kind!r}", path=str(path))
    return write_zarr(ds, path, overwrite=overwrite, progress=progress,
                      storage_options=storage_options)


def generate(scenario: str, path: str | Path, *, seed: int = 0, overwrite: bool = False,
             progress: bool = True, **params: object) -> Path | str:
    """Generate ``scenario`` (e.g. ``"telemetry"``) and write it to ``path`` in parallel."""
    query = "&".join(f"{k}={v}" for k, v in {**params, "seed": seed}.items())
    return write(open(f"synthetic://{scenario}?{query}"), path, overwrite=overwrite,
                 progress=progress)
