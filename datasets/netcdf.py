"""NetCDF and HDF5 files, one or many, combined along their coordinates (time).

Each file's variables, dims and dtypes are compared with the first file's
before anything is combined, so one drifted file is named instead of
surfacing as a broadcasting error or silent NaN padding.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from .errors import DatasetError
from .retrying import attempts_note, read_with_retries
from .sources import Source
from .storage import require

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5", ".hdf5", ".he5")


def _open_one(source: Source, name: str) -> xr.Dataset:
    def opened() -> xr.Dataset:
        target: Any = name if source.is_local else source.open(name)
        chunked = xr.open_dataset(target, engine="h5netcdf", chunks={})
        if not source.is_local:
            return chunked
        return _retried(chunked, xr.open_dataset(name, engine="h5netcdf"), name)

    try:
        return read_with_retries(opened, what=source.full(name))
    except Exception as error:
        raise DatasetError(f"cannot read as NetCDF/HDF5{attempts_note(error)}: {error}",
                           path=source.full(name)) from error


def _retried(chunked: xr.Dataset, lazy: xr.Dataset, path: str) -> xr.Dataset:
    """``chunked`` with each Dask variable's chunks read through :class:`RetriedReads`
    over the same variable of ``lazy`` (opened without Dask), in the same chunks."""
    replaced = {}
    for name, array in chunked.data_vars.items():
        if isinstance(array.data, da.Array) and array.ndim > 0:
            reads = RetriedReads(lazy[name].variable, path, str(name))
            replaced[name] = array.copy(data=da.from_array(
                reads, chunks=array.data.chunks, lock=False, meta=array.data._meta,
                name=f"netcdf-retried-{uuid.uuid4().hex[:8]}-{name}"))
    return chunked.assign(replaced) if replaced else chunked


class RetriedReads:
    """A NetCDF variable read lazily, each read retried after a transient storage
    error (RELIABILITY R6) and named by file and variable when it fails."""

    def __init__(self, variable: xr.Variable, path: str, name: str) -> None:
        self.variable, self.path, self.name = variable, path, name
        self.shape, self.dtype, self.ndim = variable.shape, variable.dtype, variable.ndim

    def __getitem__(self, key: tuple[Any, ...]) -> np.ndarray:
        try:
            return read_with_retries(lambda: np.asarray(self.variable[key].values),
                                     what=f"{self.path}, variable {self.name!r}")
        except Exception as error:
            raise DatasetError(f"cannot read{attempts_note(error)} ({type(error).__name__}: "
                               f"{error})", path=self.path, variable=self.name) from error


def _signature(ds: xr.Dataset) -> dict[str, tuple[tuple[str, ...], str]]:
    return {str(n): (tuple(map(str, v.dims)), str(v.dtype)) for n, v in ds.data_vars.items()}


def open_netcdf(source: Source, names: Sequence[str]) -> xr.Dataset:
    """One or several files as one lazy dataset, combined by their coordinates."""
    require("netcdf", source.uri)
    parts = [_open_one(source, name) for name in names]
    reference = _signature(parts[0])
    for name, part in zip(names[1:], parts[1:], strict=True):
        found = _signature(part)
        for variable, (dims, dtype) in reference.items():
            if variable not in found:
                raise DatasetError(f"variable missing in this file (present in {names[0]})",
                                   path=source.full(name), variable=variable)
            if found[variable] != (dims, dtype):
                raise DatasetError(f"variable is {found[variable][1]} over {found[variable][0]} "
                                   f"here but {dtype} over {dims} in {names[0]}",
                                   path=source.full(name), variable=variable)
        extra = sorted(set(found) - set(reference))
        if extra:
            raise DatasetError(f"unexpected extra variable (absent from {names[0]})",
                               path=source.full(name), variable=extra[0])
    if len(parts) == 1:
        return parts[0]
    try:
        return xr.combine_by_coords(parts, combine_attrs="drop_conflicts")  # type: ignore[return-value]
    except (ValueError, TypeError) as error:
        raise DatasetError(f"the files do not line up along a coordinate: {error}",
                           path=source.uri) from error
