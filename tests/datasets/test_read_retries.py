"""RELIABILITY R6: a transient OSError on read is retried with backoff, then succeeds;
a ValueError is not retried. Faults are injected under the real readers: Zarr's
LocalStore for chunk reads, fsspec's local file system for Parquet files, and
xarray's h5netcdf array wrapper for NetCDF reads."""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr

from suanli import datasets
from suanli.datasets import DatasetError
from suanli.datasets.retrying import transient

FAST = {"suanli.datasets.read-retries.backoff": "50ms", "scheduler": "sync"}


def _panel() -> xr.Dataset:
    rng = np.random.default_rng(0)
    return datasets.from_arrays(rng.standard_normal((4, 2000, 3)).astype("f4"),
                                sample_rate=100.0, channels=["a", "b", "c"],
                                label=["x", "y", "x", "y"]).chunk({"unit": 1})


class Faults:
    """Makes the first ``times`` reads of one chunk (or file) fail with ``error``."""

    def __init__(self, wanted: Callable[[str], bool], error: Callable[[], Exception],
                 times: int) -> None:
        self.wanted, self.error, self.times = wanted, error, times
        self.attempts: list[float] = []

    def hit(self, key: str) -> None:
        if self.wanted(key):
            self.attempts.append(time.monotonic())
            if len(self.attempts) <= self.times:
                raise self.error()


def _zarr_faults(monkeypatch: pytest.MonkeyPatch, faults: Faults) -> None:
    from zarr.storage import LocalStore

    get = LocalStore.get

    async def failing_get(self: LocalStore, key: str, *args: Any, **kwargs: Any) -> Any:
        faults.hit(key)
        return await get(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", failing_get)


def _eio() -> OSError:
    return OSError(errno.EIO, "Input/output error")


def test_a_chunk_read_that_fails_twice_is_retried_with_growing_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    written = _panel()
    datasets.write(written, tmp_path / "p.zarr")
    ds = datasets.open(tmp_path / "p.zarr")
    faults = Faults(lambda key: key == "signal/c/2/0/0", _eio, times=2)
    _zarr_faults(monkeypatch, faults)
    with dask.config.set(FAST), caplog.at_level(logging.WARNING, "suanli.datasets"):
        values = ds.signal.values
    np.testing.assert_array_equal(values, written.signal.values)
    assert len(faults.attempts) == 3  # two failures, then the read that worked
    first, second = np.diff(faults.attempts)
    # waits of up to 50 ms, then up to 100 ms, each shortened by at most half
    assert first >= 0.025 and second >= 0.05, (first, second)
    assert "variable 'signal', chunk (2, 0, 0)" in caplog.text
    assert "retry 1 of 3" in caplog.text and "retry 2 of 3" in caplog.text


def test_a_value_error_is_not_retried_and_names_the_chunk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets.write(_panel(), tmp_path / "p.zarr")
    ds = datasets.open(tmp_path / "p.zarr")
    faults = Faults(lambda key: key == "signal/c/1/0/0", lambda: ValueError("bad bytes"),
                    times=99)
    _zarr_faults(monkeypatch, faults)
    with dask.config.set(FAST), pytest.raises(DatasetError) as caught:
        ds.signal.load()
    assert len(faults.attempts) == 1
    assert caught.value.variable == "signal" and caught.value.chunk == (1, 0, 0)
    assert "truncated or corrupted" in str(caught.value)


def test_storage_that_keeps_failing_is_reported_after_the_configured_attempts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets.write(_panel(), tmp_path / "p.zarr")
    ds = datasets.open(tmp_path / "p.zarr")
    faults = Faults(lambda key: key == "signal/c/3/0/0", _eio, times=99)
    _zarr_faults(monkeypatch, faults)
    with dask.config.set({**FAST, "suanli.datasets.read-retries.attempts": 3}), \
            pytest.raises(DatasetError, match=r"after 3 attempts \(OSError: \[Errno 5\] "
                                              r"Input/output error\); the storage kept "
                                              r"failing") as caught:
        ds.signal.load()
    assert len(faults.attempts) == 3
    assert caught.value.chunk == (3, 0, 0) and str(tmp_path / "p.zarr") == caught.value.path


def test_a_parquet_file_that_fails_to_read_once_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.implementations.local import LocalFileSystem

    written = _panel()
    datasets.write(written, tmp_path / "p.parquet")
    faults = Faults(lambda path: path.endswith(".parquet"), _eio, times=1)
    open_file = LocalFileSystem._open

    def failing_open(self: LocalFileSystem, path: str, *args: Any, **kwargs: Any) -> Any:
        faults.hit(str(path))
        return open_file(self, path, *args, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "_open", failing_open)
    with dask.config.set(FAST):
        read = datasets.open(tmp_path / "p.parquet", label="label")
    assert len(faults.attempts) > 1  # the first open failed, and later ones worked
    np.testing.assert_array_equal(read.signal.values, written.signal.values)


def test_which_errors_are_transient() -> None:
    assert transient(_eio())
    assert transient(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert transient(TimeoutError())
    assert not transient(FileNotFoundError(errno.ENOENT, "gone"))
    assert not transient(PermissionError(errno.EACCES, "denied"))
    # what h5py raises for a truncated file: the same every time
    assert not transient(OSError("Unable to open file (truncated file: eof = 100)"))
    assert not transient(ValueError("bad"))


def test_retry_settings_are_checked() -> None:
    from suanli.datasets.retrying import read_with_retries

    with dask.config.set({"suanli.datasets.read-retries.attempts": 0}), \
            pytest.raises(DatasetError, match=r"suanli\.datasets\.read-retries\.attempts must "
                                            r"be a whole number of at least 1"):
        read_with_retries(lambda: 1, what="x")
    with dask.config.set({"suanli.datasets.read-retries.attempts": 1}):
        calls: list[int] = []

        def failing() -> None:
            calls.append(1)
            raise _eio()

        with pytest.raises(OSError):
            read_with_retries(failing, what="x")
        assert calls == [1]


def test_a_netcdf_read_that_fails_twice_is_retried_also_on_a_cluster(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_cluster: Any) -> None:
    from xarray.backends.h5netcdf_ import H5NetCDFArrayWrapper

    written = _panel().load()
    written.to_netcdf(tmp_path / "p.nc", engine="h5netcdf")
    ds = datasets.open(tmp_path / "p.nc")
    # the workers read the file themselves, through the same retrying reader
    on_cluster = local_cluster.client.compute(ds.signal.data).result()
    np.testing.assert_array_equal(on_cluster, written.signal.values)

    faults = Faults(lambda name: name == "signal", _eio, times=2)
    getitem = H5NetCDFArrayWrapper._getitem

    def failing_getitem(self: H5NetCDFArrayWrapper, key: Any) -> Any:
        faults.hit(self.variable_name)
        return getitem(self, key)

    monkeypatch.setattr(H5NetCDFArrayWrapper, "_getitem", failing_getitem)
    with dask.config.set(FAST):
        np.testing.assert_array_equal(ds.signal.values, written.signal.values)
    assert len(faults.attempts) > 2 and faults.attempts[2] - faults.attempts[1] >= 0.05
    faults.attempts.clear()
    faults.times = 99
    with dask.config.set({**FAST, "suanli.datasets.read-retries.attempts": 2}), \
            pytest.raises(DatasetError, match=r"cannot read after 2 attempts") as caught:
        ds.signal.load()
    assert caught.value.variable == "signal" and caught.value.path == str(tmp_path / "p.nc")
