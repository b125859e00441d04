"""Atomic writes to object storage (datasets/remote.py), against moto's S3 server on
127.0.0.1: the same promises as local writes (RELIABILITY R8, R9, R10), kept without a
rename."""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from suanli import datasets
from suanli.datasets import DatasetError


def _panel(seed: int = 0, units: int = 4) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return datasets.from_arrays(rng.standard_normal((units, 256, 2)).astype("f4"),
                                sample_rate=64, channels=["a", "b"],
                                label=["ok", "bad"] * (units // 2)
                                ).chunk({"unit": 1})  # type: ignore[arg-type]


@pytest.fixture
def prefix(s3: dict[str, Any]) -> str:
    """A fresh folder in the test bucket for each test."""
    return f"suanli-test/{uuid.uuid4().hex[:8]}"


def _leftovers(s3: dict[str, Any], prefix: str) -> list[str]:
    """Hidden staging copies or commit records under ``prefix``."""
    s3["fs"].invalidate_cache()
    return [p for p in s3["fs"].find(prefix, withdirs=True)
            if p.rpartition("/")[2].startswith(".")]


@pytest.mark.parametrize("name", ["p.zarr", "p.parquet"])
def test_a_write_to_s3_reads_back_and_verifies(s3: dict[str, Any], prefix: str,
                                               name: str) -> None:
    options, url = s3["options"], f"s3://{prefix}/{name}"
    assert datasets.write(_panel(), url, storage_options=options) == url
    back = datasets.open(url, storage_options=options)
    np.testing.assert_array_equal(back.signal.values, _panel().signal.values)
    assert datasets.verify(url, storage_options=options).ok
    assert s3["fs"].exists(f"{prefix}/{name}/_suanli-manifest.json")
    assert _leftovers(s3, prefix) == []
    with pytest.raises(DatasetError, match="output exists"):
        datasets.write(_panel(), url, storage_options=options)


def test_zarr_on_s3_opens_cleanly_in_plain_xarray(s3: dict[str, Any], prefix: str) -> None:
    url = datasets.write(_panel(), f"s3://{prefix}/p.zarr", storage_options=s3["options"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = xr.open_zarr(url, storage_options=s3["options"])
        assert back.label.dtype.kind == "U"


def test_overwrite_replaces_and_a_failed_rewrite_keeps_the_good_output(
        s3: dict[str, Any], prefix: str) -> None:
    """R9 on object storage: the failed write never reaches the target."""
    options, url = s3["options"], f"s3://{prefix}/p.zarr"
    datasets.write(_panel(0), url, storage_options=options)
    datasets.write(_panel(1), url, storage_options=options, overwrite=True)
    np.testing.assert_array_equal(datasets.open(url, storage_options=options).signal.values,
                                  _panel(1).signal.values)

    def fail_on_the_third(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block_info[0]["chunk-location"][0] == 2:
            raise RuntimeError("disk on fire")
        return block

    broken = _panel(2)
    broken["signal"] = broken.signal.copy(data=da.map_blocks(
        fail_on_the_third, broken.signal.data, dtype="f4"))
    with pytest.raises(RuntimeError, match="disk on fire"):
        datasets.write(broken, url, storage_options=options, overwrite=True)
    np.testing.assert_array_equal(datasets.open(url, storage_options=options).signal.values,
                                  _panel(1).signal.values)
    assert datasets.verify(url, storage_options=options).ok
    assert _leftovers(s3, prefix) == []


def test_a_commit_killed_part_way_is_finished_by_the_next_reader(
        s3: dict[str, Any], prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """R8 on object storage: the writer dies while copying the new output in (after the
    old one was removed); the next open finishes the commit, manifest last."""
    options, url, fs = s3["options"], f"s3://{prefix}/p.zarr", s3["fs"]
    datasets.write(_panel(0), url, storage_options=options)
    import fsspec.core

    writer_fs = fsspec.core.url_to_fs(url, **options)[0]  # fsspec's cached instance
    original_copy = writer_fs.copy
    copied: list[str] = []

    def dying_copy(source: str, target: str, **kwargs: Any) -> None:
        if len(copied) == 5:
            raise KeyboardInterrupt("the writer is killed")
        copied.append(target)
        original_copy(source, target, **kwargs)

    monkeypatch.setattr(writer_fs, "copy", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        datasets.write(_panel(1), url, storage_options=options, overwrite=True)
    monkeypatch.setattr(writer_fs, "copy", original_copy)
    assert len(copied) == 5
    fs.invalidate_cache()
    assert not fs.exists(f"{prefix}/p.zarr/_suanli-manifest.json")  # not "written" yet
    assert fs.exists(f"{prefix}/.p.zarr.committing")
    back = datasets.open(url, storage_options=options)
    np.testing.assert_array_equal(back.signal.values, _panel(1).signal.values)
    assert datasets.verify(url, storage_options=options).ok
    assert _leftovers(s3, prefix) == []


def test_a_deleted_chunk_on_s3_is_found_by_verify(s3: dict[str, Any], prefix: str) -> None:
    """R10 on object storage."""
    url = datasets.write(_panel(), f"s3://{prefix}/p.zarr", storage_options=s3["options"])
    s3["fs"].rm(f"{prefix}/p.zarr/signal/c/1/0/0")
    s3["fs"].invalidate_cache()
    found = datasets.verify(url, storage_options=s3["options"])
    assert not found.ok
    assert [str(p) for p in found.problems] == [
        "signal/c/1/0/0: missing (variable 'signal', chunk (1, 0, 0))"]


def test_a_killed_writers_staging_on_s3_is_removed_by_the_next_write(
        s3: dict[str, Any], prefix: str) -> None:
    """R8 on object storage: a staging prefix whose writer (a process of this host) is
    dead goes with the next write beside it; a live writer's, another host's, and one
    whose commit began (the reader finishes that) stay."""
    import os
    import subprocess
    import sys

    from suanli.datasets.atomic import _HOST

    fs = s3["fs"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    names = {"abandoned": f".old.zarr.writing-{_HOST}-{dead}-abcd1234",
             "live": f".other.zarr.writing-{_HOST}-{os.getpid()}-abcd1234",
             "elsewhere": f".old.zarr.writing-otherhost-{dead}-abcd1234",
             "committing": f".done.zarr.writing-{_HOST}-{dead}-abcd1234"}
    for name in names.values():
        fs.pipe_file(f"{prefix}/{name}/signal/zarr.json", b"{}")
    fs.pipe_file(f"{prefix}/.done.zarr.committing",
                 f'{{"staging": "{prefix}/{names["committing"]}"}}'.encode())
    datasets.write(_panel(), f"s3://{prefix}/new.zarr", storage_options=s3["options"])
    fs.invalidate_cache()
    left = {p.rpartition("/")[2] for p in fs.ls(prefix, detail=False)}
    assert names["abandoned"] not in left
    assert {names["live"], names["elsewhere"], names["committing"]} <= left
