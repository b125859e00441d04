from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from suanli import datasets
from suanli.datasets import DatasetError
from suanli.datasets.generators import telemetry as tm
from suanli.datasets.generators.synthetic import telemetry


def test_same_seed_same_bytes_whatever_the_chunking() -> None:
    a = telemetry(units=3, duration="150s", seed=5, chunk_samples=2 * tm.BLOCK)
    b = telemetry(units=3, duration="150s", seed=5, chunk_samples=10_000)
    assert a.signal.data.chunks != b.signal.data.chunks
    np.testing.assert_array_equal(a.signal.values, b.signal.values)
    c = telemetry(units=3, duration="150s", seed=6)
    assert not np.array_equal(np.nan_to_num(a.signal.values), np.nan_to_num(c.signal.values))


def test_classes_balanced_and_named() -> None:
    ds = datasets.open("synthetic://telemetry?units=20&minutes=1&seed=0")
    counts = np.bincount(ds.label.values, minlength=len(tm.CLASSES))
    assert counts.tolist() == [4] * 5
    assert ds.label.attrs["classes"] == list(tm.CLASSES)
    assert datasets.sample_rate(ds) == 1024.0


def _spectrum(values: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    clean = np.where(np.isnan(values), 0.0, values)
    return scipy.signal.welch(clean, fs=rate, nperseg=4096)


def _at(freqs: np.ndarray, power: np.ndarray, hz: float) -> float:
    return float(power[np.argmin(np.abs(freqs - hz))])


def test_fault_signatures_are_where_physics_puts_them() -> None:
    rate = 1024.0
    for unit in range(10):
        params = tm.machine_parameters(0, unit)
        samples = tm.generate_range(0, unit, 0, 4 * tm.BLOCK, rate, gaps_per_hour=0)
        freqs, power = _spectrum(samples[:, 0], rate)
        name = tm.CLASSES[params.label]
        shaft = params.shaft_hz
        if name == "imbalance":
            assert _at(freqs, power, shaft) > 5 * _at(freqs, power, 2 * shaft)
        if name == "misalignment":
            assert _at(freqs, power, 2 * shaft) > _at(freqs, power, shaft)
        if name == "bearing":
            # resonance carrier with sidebands at the defect frequency
            assert _at(freqs, power, params.resonance_hz) > 20 * np.median(power)
            defect = params.defect_ratio * shaft
            assert _at(freqs, power, params.resonance_hz + defect) > 10 * np.median(power)
        if name == "overheating":
            temperature = samples[:, 1]
            assert temperature[-1000:].mean() > temperature[:1000].mean()


def test_gaps_are_short_nan_runs_in_every_channel() -> None:
    samples = tm.generate_range(1, 0, 0, 64 * tm.BLOCK, 1024.0, gaps_per_hour=30)
    missing = np.isnan(samples)
    assert missing.any()
    assert (missing.all(axis=1) == missing.any(axis=1)).all()


def test_huge_dataset_is_defined_lazily() -> None:
    ds = datasets.open("synthetic://telemetry?units=1000&hours=240&seed=0")
    assert ds.signal.nbytes > 2**40  # over a TiB, defined without being generated
    piece = ds.signal.isel(unit=999, time=slice(5_000_000, 5_001_000)).values
    assert piece.shape == (1000, 3) and np.isfinite(piece).mean() > 0.9


@pytest.mark.parametrize("uri,expected", [
    ("synthetic://weather?units=2", "unknown synthetic scenario 'weather'"),
    ("synthetic://telemetry?colour=red", "unknown parameter 'colour'"),
    ("synthetic://telemetry?units=many", "should be int"),
])
def test_bad_synthetic_uris(uri: str, expected: str) -> None:
    with pytest.raises(DatasetError, match=expected):
        datasets.open(uri)


def test_a_range_is_the_same_samples_in_the_panels_c_order_whatever_its_bounds() -> None:
    whole = tm.generate_range(2, 0, 0, 3 * tm.BLOCK, 1024.0, gaps_per_hour=0)
    for start, stop in ((0, 10), (tm.BLOCK - 3, 2 * tm.BLOCK + 5), (5, 3 * tm.BLOCK)):
        part = tm.generate_range(2, 0, start, stop, 1024.0, gaps_per_hour=0)
        # (time, channel) in C order: what Zarr reads and the compiled steps take uncopied.
        assert part.flags.c_contiguous and part.shape == (stop - start, whole.shape[1])
        np.testing.assert_array_equal(part, whole[start:stop])
