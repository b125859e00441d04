"""``datasets.open``: one entry point for every source a user has."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from .errors import DatasetError
from .generators import open_synthetic
from .zarr_store import open_zarr

SUPPORTED = "synthetic://SCENARIO?..., a Zarr store (*.zarr)"


def open(uri: str | Path) -> xr.Dataset:
    """Open ``uri`` lazily as an xarray Dataset.

    >>> ds = open("synthetic://telemetry?units=10&minutes=5&seed=0")   # doctest: +SKIP
    >>> ds = open("plant.zarr")                                          # doctest: +SKIP
    """
    text = str(uri)
    if text.startswith("synthetic://"):
        return open_synthetic(text)
    path = Path(text)
    if path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zgroup").exists():
        return open_zarr(path)
    if not path.exists():
        raise DatasetError(f"no such dataset; expected {SUPPORTED}", path=text)
    raise DatasetError(f"unsupported dataset format; expected {SUPPORTED}", path=text)
