"""The formats ``datasets.open`` reads, by name: a registry, as xarray's backends are.

A format is an opener (a :class:`~.sources.Source` and the table mapping in, a
lazy Dataset out), the name endings it claims and, for formats stored as a
folder of their own (Zarr), how to recognise one. The built-in formats are
Zarr, NetCDF/HDF5, Parquet and CSV; third parties add formats with
:func:`register_format` or through the ``suanli.datasets.formats`` entry-point
group, whose entry points name a :class:`Format`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import xarray as xr

from .errors import DatasetError
from .sources import Source

Opener = Callable[..., xr.Dataset]  # (source, **mapping) -> Dataset


@dataclass(frozen=True)
class Format:
    """One format ``datasets.open`` reads."""

    name: str
    open: Opener
    #: Name endings of its files or folders, lower case (``.csv.gz``).
    suffixes: tuple[str, ...] = ()
    #: Whether a folder with no telling name is one dataset of this format.
    recognise: Callable[[Source], bool] | None = None


_formats: dict[str, Format] = {}


def register_format(name: str, opener: Opener, suffixes: Sequence[str] = (),
                    recognise: Callable[[Source], bool] | None = None) -> None:
    """Make ``datasets.open`` read ``name`` with ``opener(source, **mapping)``."""
    _formats[name] = Format(name, opener, tuple(s.lower() for s in suffixes), recognise)


@functools.cache
def _format_entry_points() -> tuple[Any, ...]:
    # Scanning the installed distributions takes ~10 ms, and every open asks: once per
    # process (a plug-in installed while it runs is seen by the next one).
    return tuple(entry_points(group="suanli.datasets.formats"))


def known_formats() -> dict[str, Format]:
    """Every format: built in, registered, and from entry points."""
    _register_builtin()
    for entry in _format_entry_points():
        if entry.name not in _formats:
            loaded = entry.load()
            if not isinstance(loaded, Format):
                raise DatasetError(f"entry point suanli.datasets.formats:{entry.name} names "
                                   f"{loaded!r}, not a suanli.datasets.Format")
            _formats[entry.name] = loaded
    return dict(_formats)


def get_format(name: str) -> Format:
    found = known_formats()
    if name not in found:
        raise DatasetError(f"unknown format {name!r}; known formats: {', '.join(sorted(found))}")
    return found[name]


def format_of(name: str) -> str | None:
    """The format a file or folder name claims by its ending, if any."""
    lowered = name.lower().rstrip("/")
    for found in known_formats().values():
        if any(lowered.endswith(suffix) for suffix in found.suffixes):
            return found.name
    return None


def recognised_format(source: Source) -> str | None:
    """The format of a folder that recognises itself as one (a Zarr store), if any."""
    for found in known_formats().values():
        if found.recognise is not None and found.recognise(source):
            return found.name
    return None


def _open_zarr(source: Source, **mapping: Any) -> xr.Dataset:
    from .zarr_store import has_consolidated_metadata, open_zarr

    if source.is_local:
        return open_zarr(Path(source.path))
    mapper = source.fs.get_mapper(source.path)
    try:
        return xr.open_zarr(mapper, chunks={}, consolidated=has_consolidated_metadata(mapper.get))
    except Exception as error:
        raise DatasetError(f"cannot open as Zarr: {error}", path=source.uri) from error


def _is_zarr(source: Source) -> bool:
    return bool(source.fs.exists(f"{source.path}/zarr.json")
                or source.fs.exists(f"{source.path}/.zgroup"))


def _open_netcdf(source: Source, **mapping: Any) -> xr.Dataset:
    from .netcdf import NETCDF_SUFFIXES, open_netcdf

    return open_netcdf(source, source.files(NETCDF_SUFFIXES))


def _table_opener(kind: str, suffixes: tuple[str, ...]) -> Opener:
    def open_tables_of_kind(source: Source, **mapping: Any) -> xr.Dataset:
        from .tables import open_tables

        return open_tables(source, source.files(suffixes), kind, **mapping)

    return open_tables_of_kind


def _register_builtin() -> None:
    if _formats.keys() >= {"zarr", "netcdf", "parquet", "csv"}:
        return
    from .netcdf import NETCDF_SUFFIXES
    from .tables import CSV_SUFFIXES, PARQUET_SUFFIXES

    builtin: Mapping[str, Format] = {
        "zarr": Format("zarr", _open_zarr, (".zarr",), _is_zarr),
        "netcdf": Format("netcdf", _open_netcdf, NETCDF_SUFFIXES),
        "parquet": Format("parquet", _table_opener("parquet", PARQUET_SUFFIXES),
                          PARQUET_SUFFIXES),
        "csv": Format("csv", _table_opener("csv", CSV_SUFFIXES), CSV_SUFFIXES),
    }
    for name, found in builtin.items():
        _formats.setdefault(name, found)
