"""``datasets.open`` reads formats from a registry that a third party can add to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from suanli import datasets


def test_the_builtin_formats_are_registered() -> None:
    found = datasets.known_formats()
    assert {"zarr", "netcdf", "parquet", "csv"} <= set(found)
    assert ".csv.gz" in found["csv"].suffixes and found["zarr"].recognise is not None


def test_a_registered_format_opens_by_its_ending_and_by_name(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    from suanli.datasets import formats

    monkeypatch.setattr(formats, "_formats", dict(formats._formats))  # leave no trace
    values = np.arange(12, dtype=np.float32).reshape(2, 3, 2)

    def open_npy(source: Any, **mapping: Any) -> xr.Dataset:
        data = np.load(source.path)
        return datasets.from_arrays(data, sample_rate=float(mapping.get("sample_rate", 1.0)))

    datasets.register_format("npy", open_npy, suffixes=[".NPY"])
    np.save(tmp_path / "panel.npy", values)
    opened = datasets.open(tmp_path / "panel.npy", sample_rate=4.0)
    np.testing.assert_array_equal(opened.signal.values, values)
    assert datasets.sample_rate(opened) == 4.0
    (tmp_path / "panel.data").write_bytes((tmp_path / "panel.npy").read_bytes())
    assert datasets.open(tmp_path / "panel.data", format="npy").signal.shape == (2, 3, 2)
    with pytest.raises(datasets.DatasetError, match=r"unknown format 'nope'; known formats: "
                                                    r"csv, netcdf, npy, parquet, zarr"):
        datasets.open(tmp_path / "panel.data", format="nope")
