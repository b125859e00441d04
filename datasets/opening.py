"""``datasets.open``: one entry point for every source a user has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr

from .atomic import recover_interrupted_swap
from .catalog import catalog_entry
from .errors import DatasetError
from .formats import format_of, get_format, recognised_format
from .generators import open_synthetic
from .manifest import manifest_path, verify
from .remote import recover_interrupted_commit
from .sources import Source

SUPPORTED = ("synthetic://SCENARIO?..., a catalog name, Zarr (*.zarr), NetCDF/HDF5 (*.nc, "
             "*.h5), Parquet (*.parquet) or CSV (*.csv, *.csv.gz): a file, folder or glob, "
             "local or on object storage (s3://...)")


def open(uri: str | Path, *, storage_options: dict[str, Any] | None = None,
         format: str | None = None, **mapping: Any) -> xr.Dataset:
    """Open ``uri`` lazily as an xarray Dataset.

    ``mapping`` (``unit=``, ``time=``, ``channels=``, ``label=``, ``layout=``,
    ``sample_rate=``) says how a table's columns map to the panel; gridded
    data (Zarr, NetCDF) opens as it is.

    >>> ds = open("synthetic://telemetry?units=10&minutes=5&seed=0")   # doctest: +SKIP
    >>> ds = open("plant.zarr")                                          # doctest: +SKIP
    >>> ds = open("s3://bucket/exports/*.csv.gz", unit="machine")       # doctest: +SKIP
    """
    text = str(uri)
    if text.startswith("synthetic://"):
        return open_synthetic(text)
    entry = catalog_entry(text)
    if entry is not None:
        return open(entry.pop("uri"), **{**entry, **mapping,
                                         **({"storage_options": storage_options}
                                            if storage_options else {})})
    source = Source(text, storage_options or {})
    if source.is_local:
        recover_interrupted_swap(Path(source.path))  # a write killed mid-swap
    else:
        recover_interrupted_commit(source.fs, source.path)  # one killed mid-commit
    kind = format or format_of(text)
    if kind is None and source.exists() and source.isdir():
        kind = recognised_format(source) or _folder_format(source)
    if kind is None:
        if not source.exists() and not any(c in text for c in "*?["):
            raise DatasetError(f"no such dataset; expected {SUPPORTED}", path=text)
        raise DatasetError(f"unsupported dataset format; expected {SUPPORTED}", path=text)
    reader = get_format(kind)
    if reader.recognise is None and source.isdir():
        _check_against_manifest(source)  # a folder of files, not a store of its own
    return reader.open(source, **mapping)


def _check_against_manifest(folder: Source) -> None:
    """A folder suanli wrote is read only when whole: a table has no chunk grid
    to notice a lost file by, so the manifest is checked (checksums included;
    the files are about to be read whole anyway)."""
    if manifest_path(folder.path, folder.fs) is None:
        return
    found = verify(folder.uri, storage_options=folder.storage_options)
    if not found.ok:
        problem = found.problems[0]
        raise DatasetError(f"{len(found.problems)} file(s) differ from the manifest written "
                           f"with this output, first {problem}",
                           path=folder.full(f"{folder.path}/{problem.file}"))


def _folder_format(source: Source) -> str | None:
    kinds = {k for p in source.fs.find(source.path) if (k := format_of(p)) is not None}
    if len(kinds) > 1:
        raise DatasetError(f"the folder mixes formats ({', '.join(sorted(kinds))}); name a "
                           "glob such as folder/*.parquet", path=source.uri)
    return kinds.pop() if kinds else None
