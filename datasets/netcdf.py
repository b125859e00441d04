"""NetCDF and HDF5 files, one or many, combined along their coordinates (time).

Each file's variables, dims and dtypes are compared with the first file's
before anything is combined, so one drifted file is named instead of
surfacing as a broadcasting error or silent NaN padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from .errors import DatasetError
from .retrying import attempts_note, read_with_retries
from .sources import Source

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".h5", ".hdf5", ".he5")


def _open_one(source: Source, name: str) -> xr.Dataset:
    def opened() -> xr.Dataset:
        target: Any = name if source.is_local else source.open(name)
        return xr.open_dataset(target, engine="h5netcdf", chunks={})

    try:
        return read_with_retries(opened, what=source.full(name))
    except Exception as error:
        raise DatasetError(f"cannot read as NetCDF/HDF5{attempts_note(error)}: {error}",
                           path=source.full(name)) from error


def _signature(ds: xr.Dataset) -> dict[str, tuple[tuple[str, ...], str]]:
    return {str(n): (tuple(map(str, v.dims)), str(v.dtype)) for n, v in ds.data_vars.items()}


def open_netcdf(source: Source, names: Sequence[str]) -> xr.Dataset:
    """One or several files as one lazy dataset, combined by their coordinates."""
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
