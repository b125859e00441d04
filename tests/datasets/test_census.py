"""A derived output written and its input's values counted in one pass over the input."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

from suanli import datasets
from suanli.pipelines import load_pipeline


def test_each_input_chunk_is_made_once_for_the_write_and_the_census(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from suanli.datasets.generators import telemetry

    made: list[int] = []
    generate = telemetry.generate_block
    monkeypatch.setattr(telemetry, "generate_block",
                        lambda *args, **kwargs: made.append(1) or generate(*args, **kwargs))
    source = datasets.open("synthetic://telemetry?units=4&minutes=1&seed=3")
    chunks = source.signal.data.npartitions

    def derive(ds: xr.Dataset) -> xr.Dataset:  # a pipeline's steps, as a run writes them
        return load_pipeline("sensor-faults").transform(ds)[["band_power", "window_stats"]]

    with dask.config.set(scheduler="sync"):
        path, report = datasets.write_with_value_census(source, derive, tmp_path / "d.zarr")
        assert len(made) == chunks
        expected = datasets.value_report(source)
        # What the two computed one after the other cost: every chunk made twice more.
        made.clear()
        datasets.write(derive(source), tmp_path / "e.zarr")
        datasets.value_report(source)
        assert len(made) == 2 * chunks
    assert report.to_dict() == expected.to_dict()
    written = datasets.open(path)
    np.testing.assert_array_equal(written.band_power.values, derive(source).band_power.values)
    assert datasets.verify(path).ok


def test_nothing_is_published_when_the_census_fails(tmp_path: Path) -> None:
    source = datasets.from_arrays(np.ones((2, 64, 1), dtype=np.float32), sample_rate=8.0)
    with pytest.raises(datasets.DatasetError, match="no such variable"):
        datasets.write_with_value_census(source, lambda ds: ds, tmp_path / "x.zarr",
                                         variable="missing")
    assert not any(tmp_path.iterdir())
