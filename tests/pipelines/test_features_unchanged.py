"""The shipped pipeline's features, bit for bit as before the pipelines regrouping.

Digests of ``band_power`` and ``window_stats`` computed by sensor-faults' steps on
its default dataset, recorded before ``pipelines/`` was regrouped into ``compute/``
and thin ``steps/`` (issue 16). A change to the arithmetic of any step, kernel
or fused stage shows here; a deliberate one updates the digests and says why.
"""

from __future__ import annotations

import hashlib

import dask
import numpy as np
import pytest
import xarray as xr

from suanli import datasets
from suanli.pipelines import load_pipeline

#: (chunking, variable) -> first 16 hex digits of the SHA-256 of the C-ordered values.
RECORDED = {
    ("generated", "band_power"): "2ac4ba5b6c8ffe45",
    ("generated", "window_stats"): "633fa8718db3a394",
    # Its first 8 units in memory, chunked by 2 units and, along time, on window
    # bounds (series split over chunks: each chunk's moments merged) ...
    ("8 windows", "band_power"): "d0848a4fbdd0834e",
    ("8 windows", "window_stats"): "9ced2fda627c849f",
    # ... or off them (the steps' own chunking, not the fused gap filling).
    ("5000 samples", "band_power"): "af48242fa2008d5a",
    ("5000 samples", "window_stats"): "ab494471b2d60444",
}
CHUNKINGS = {"generated": None, "8 windows": 8 * 1024, "5000 samples": 5000}


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def default_dataset() -> xr.Dataset:
    pipe = load_pipeline("sensor-faults")
    assert pipe.dataset is not None
    return datasets.validate(datasets.open(pipe.dataset))


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_sensor_faults_features_are_bit_identical_to_the_recorded_ones(
        default_dataset: xr.Dataset, chunking: str) -> None:
    ds = default_dataset
    if CHUNKINGS[chunking] is not None:
        ds = ds.isel(unit=slice(0, 8)).compute().chunk({"unit": 2, "time": CHUNKINGS[chunking]})
    assert int(ds["signal"].isnull().sum()) > 0  # the gaps fill_gaps mends are there
    with dask.config.set(scheduler="threads"):
        features = load_pipeline("sensor-faults").transform(ds)
        found = {name: _digest(features[name].values) for name in ("band_power", "window_stats")}
    assert found == {name: RECORDED[(chunking, name)] for name in found}


@pytest.mark.slow
def test_the_steps_one_by_one_give_the_fused_features(default_dataset: xr.Dataset) -> None:
    ds = default_dataset
    for call in load_pipeline("sensor-faults").steps:
        ds = call.apply(ds)
    with dask.config.set(scheduler="threads"):
        found = {name: _digest(ds[name].values) for name in ("band_power", "window_stats")}
    assert found == {name: RECORDED[("generated", name)] for name in found}
