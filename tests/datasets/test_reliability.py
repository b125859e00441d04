"""RELIABILITY.md rows R8-R13 as real tests: killed writers, lost, truncated and
bit-flipped files, schema drift in one of N files, NaN and infinities."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from suanli import datasets
from suanli.datasets import DatasetError

pytestmark = pytest.mark.slow


def _panel(seed: int, units: int = 6, samples: int = 4000) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return datasets.from_arrays(rng.standard_normal((units, samples, 3)).astype("f4"),
                                sample_rate=100.0, channels=["a", "b", "c"],
                                label=[f"c{i % 2}" for i in range(units)])


# A writer in its own process, slowed down (each unit's chunk takes 0.15 s) so a
# kill lands mid-write; with SUANLI_TEST_DIE_AT=swap it kills itself between
# retiring the old output and moving the new one in.
WRITER = textwrap.dedent("""
    import os, sys, time, signal
    from pathlib import Path
    import numpy as np, dask
    from suanli import datasets
    from suanli.datasets import zarr_store

    dask.config.set(scheduler="threads", num_workers=1)
    target, kind, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(seed)
    ds = datasets.from_arrays(rng.standard_normal((6, 4000, 3)).astype("f4"),
                              sample_rate=100.0, channels=["a", "b", "c"],
                              label=[f"c{i % 2}" for i in range(6)]).chunk({"unit": 1})

    def slow(block):
        time.sleep(0.15)
        return block

    ds = ds.assign(signal=ds.signal.copy(data=ds.signal.data.map_blocks(slow)))
    if os.environ.get("SUANLI_TEST_DIE_AT") == "swap":
        rename = Path.rename

        def dying_rename(self, to):
            result = rename(self, to)
            if ".replaced-" in str(to):
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        Path.rename = dying_rename
    print("writing", flush=True)
    datasets.write(ds, target, overwrite=True, format=kind)
    print("done", flush=True)
""")


def _run_writer(target: Path, kind: str, seed: int, kill_after: float | None = None,
                die_at: str | None = None) -> int:
    env = {**os.environ, "SUANLI_TEST_DIE_AT": die_at or ""}
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target), kind, str(seed)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    if kill_after is not None:
        assert process.stdout is not None
        process.stdout.readline()  # "writing": imports are done, the write begins
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=120)
    return process.returncode


def _open(target: Path, kind: str) -> xr.Dataset:
    return datasets.open(target, label="label") if kind == "parquet" else \
        datasets.open(target)


@pytest.mark.parametrize("kind", ["zarr", "parquet"])
def test_r8_killed_writer_never_leaves_a_partial_output(kind: str, tmp_path: Path) -> None:
    target = tmp_path / ("out.parquet" if kind == "parquet" else "out.zarr")
    good = _panel(seed=1)
    datasets.write(good, target, format=kind)
    for delay in (0.05, 0.4, 0.8):
        assert _run_writer(target, kind, seed=2, kill_after=delay) == -signal.SIGKILL
        back = _open(target, kind)
        np.testing.assert_array_equal(back.signal.values, good.signal.values)
        assert datasets.verify(target).ok
        for staging in tmp_path.glob(f".{target.name}.writing-*"):
            with pytest.raises(DatasetError, match="cannot be verified"):
                datasets.verify(staging)  # a leftover staging copy never passes as whole
    # Killed between retiring the old output and moving the new one in.
    assert _run_writer(target, kind, seed=2, die_at="swap") == -signal.SIGKILL
    assert not target.exists()
    back = _open(target, kind)  # the previous output is put back
    np.testing.assert_array_equal(back.signal.values, good.signal.values)
    # The rerun completes.
    assert _run_writer(target, kind, seed=2) == 0
    new = _panel(seed=2)
    np.testing.assert_array_equal(_open(target, kind).signal.values, new.signal.values)
    assert datasets.verify(target).ok


@pytest.mark.parametrize("kind", ["zarr", "parquet"])
def test_r9_failed_rerun_leaves_good_output_unchanged(kind: str, tmp_path: Path) -> None:
    target = tmp_path / ("out.parquet" if kind == "parquet" else "out.zarr")
    good = _panel(seed=1)
    datasets.write(good, target, format=kind)
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}

    def explode(block: np.ndarray) -> np.ndarray:
        raise RuntimeError("disk on fire")

    bad = good.chunk({"unit": 2})
    bad = bad.assign(signal=bad.signal.copy(data=bad.signal.data.map_blocks(explode, dtype="f4")))
    with pytest.raises(RuntimeError, match="disk on fire"):
        datasets.write(bad, target, overwrite=True, format=kind)
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert not list(tmp_path.glob(".*"))


def test_r10_deleted_zarr_chunk_is_named_by_verify_and_by_reads(tmp_path: Path) -> None:
    target = datasets.write(_panel(seed=1).chunk({"unit": 2, "time": 1000}),
                            tmp_path / "out.zarr")
    (target / "signal" / "c" / "1" / "2" / "0").unlink()
    found = datasets.verify(target)
    assert not found.ok
    assert [(p.what, p.variable, p.chunk) for p in found.problems] == \
        [("missing", "signal", (1, 2, 0))]
    with pytest.raises(DatasetError) as caught:
        datasets.open(target).signal.values  # noqa: B018
    assert caught.value.variable == "signal" and caught.value.chunk == (1, 2, 0)
    assert "missing" in str(caught.value)
    # Untouched chunks still read.
    assert np.isfinite(datasets.open(target).signal.isel(unit=0).values).all()


def test_r10_deleted_parquet_file_is_named(tmp_path: Path) -> None:
    target = datasets.write(_panel(seed=1).chunk({"unit": 2}), tmp_path / "out.parquet")
    (target / "part-00001.parquet").unlink()
    with pytest.raises(DatasetError, match=r"part-00001\.parquet: missing"):
        datasets.open(target)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [_flip, _truncate])
def test_r11_damaged_zarr_chunk_names_path_variable_and_chunk(damage, tmp_path: Path  # type: ignore[no-untyped-def]
                                                              ) -> None:
    target = datasets.write(_panel(seed=1).chunk({"unit": 2, "time": 1000}),
                            tmp_path / "out.zarr")
    damage(target / "signal" / "c" / "2" / "1" / "0")
    with pytest.raises(DatasetError) as caught:
        datasets.open(target).signal.sum().compute()
    error = caught.value
    assert error.path == str(target) and error.variable == "signal"
    assert error.chunk == (2, 1, 0)
    assert [p.chunk for p in datasets.verify(target).problems] == [(2, 1, 0)]


@pytest.mark.parametrize("damage", [_flip, _truncate])
def test_r11_damaged_parquet_file_is_named(damage, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = datasets.write(_panel(seed=1).chunk({"unit": 2}), tmp_path / "out.parquet")
    damage(target / "part-00002.parquet")
    with pytest.raises(DatasetError, match=r"part-00002\.parquet"):
        datasets.open(target)


def test_r11_truncated_csv_gzip_and_netcdf_are_named(tmp_path: Path) -> None:
    frame = pd.DataFrame({"unit": np.repeat([1, 2], 500), "time": np.tile(np.arange(500), 2),
                          "a": np.arange(1000.0)})
    frame.to_csv(tmp_path / "t.csv.gz", index=False)
    _truncate(tmp_path / "t.csv.gz")
    with pytest.raises(DatasetError) as caught:
        datasets.open(tmp_path / "t.csv.gz", sample_rate=1)
    assert caught.value.path == str(tmp_path / "t.csv.gz")
    grid = xr.Dataset({"v": (("x",), np.arange(100_000.0))})
    grid.to_netcdf(tmp_path / "g.nc", engine="h5netcdf")
    _truncate(tmp_path / "g.nc")
    with pytest.raises(DatasetError) as caught:
        datasets.open(tmp_path / "g.nc").load()
    assert caught.value.path == str(tmp_path / "g.nc")


def _wide_files(folder: Path, files: int = 4) -> list[pd.DataFrame]:
    folder.mkdir()
    parts = []
    for i in range(files):
        parts.append(pd.DataFrame({"unit": f"u{i}", "time": np.arange(200) / 10.0,
                                   "a": np.arange(200.0), "b": np.ones(200)}))
    return parts


@pytest.mark.parametrize(("drift", "column"), [
    (lambda f: f.assign(b=f["b"].astype(str)), "b"),
    (lambda f: f.drop(columns="b"), "b"),
    (lambda f: f.assign(extra=1.0), "extra"),
])
def test_r12_parquet_schema_drift_in_one_of_n_files(drift, column: str,  # type: ignore[no-untyped-def]
                                                    tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    for i, part in enumerate(_wide_files(folder)):
        (drift(part) if i == 2 else part).to_parquet(folder / f"f{i}.parquet", index=False)
    with pytest.raises(DatasetError) as caught:
        datasets.open(folder)
    assert caught.value.column == column
    assert caught.value.path is not None and caught.value.path.endswith("f2.parquet")


def test_r12_csv_drift_is_named_but_int_float_is_not_drift(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    parts = _wide_files(folder, 3)
    parts[1] = parts[1].assign(a=np.arange(200))  # integers in one file: not drift
    for i, part in enumerate(parts):
        part.to_csv(folder / f"f{i}.csv", index=False)
    assert datasets.open(folder).sizes["unit"] == 3
    parts[2].assign(a="broken sensor").to_csv(folder / "f2.csv", index=False)
    with pytest.raises(DatasetError) as caught:
        datasets.open(folder)
    assert caught.value.column == "a" and str(caught.value.path).endswith("f2.csv")


def test_r12_netcdf_drift_is_named(tmp_path: Path) -> None:
    for i in range(3):
        part = xr.Dataset({"v": (("time",), np.arange(10.0) + 10 * i)},
                          coords={"time": np.arange(10) + 10 * i})
        if i == 1:
            part["v"] = part["v"].astype("int32")
        part.to_netcdf(tmp_path / f"p{i}.nc", engine="h5netcdf")
    with pytest.raises(DatasetError) as caught:
        datasets.open(str(tmp_path / "p*.nc"))
    assert caught.value.variable == "v" and str(caught.value.path).endswith("p1.nc")


def test_r13_nan_and_infinities_are_counted_and_located() -> None:
    clean = _panel(seed=3).chunk({"unit": 2, "time": 1000})
    report = datasets.value_report(clean)
    assert report.clean and report.total == 6 * 4000 * 3  # no false alarms
    values = clean.signal.values.copy()
    values[1, 17, 2] = np.nan
    values[4, 2500, 0] = np.inf
    values[4, 2501, 0] = np.inf
    values[5, 3999, 1] = -np.inf
    dirty = clean.assign(signal=(clean.signal.dims, values)).chunk({"unit": 2, "time": 1000})
    report = datasets.value_report(dirty)
    assert report.counts == {"nan": 1, "+inf": 2, "-inf": 1}
    assert report.places["nan"] == [{"unit": 1, "time": 17, "channel": "c"}]
    assert report.places["+inf"][0] == {"unit": 4, "time": 2500, "channel": "a"}
    assert report.places["-inf"] == [{"unit": 5, "time": 3999, "channel": "b"}]
    assert datasets.check_values(dirty, policy="report") == report
    with pytest.raises(DatasetError, match=r"2 \+inf"):
        datasets.check_values(dirty, policy="reject", allow=("nan",))
    assert datasets.check_values(clean, policy="reject") is not None


def test_a_killed_writers_staging_is_removed_by_the_next_write(tmp_path: Path) -> None:
    """R8: the staging folder a killed writer left (a dead process of this host) goes
    with the next write into the same folder; a live writer's, and another host's,
    stay."""
    from suanli.datasets.atomic import _HOST

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    abandoned = tmp_path / f".old.zarr.writing-{_HOST}-{dead.stdout.strip()}-abcd1234"
    live = tmp_path / f".other.zarr.writing-{_HOST}-{os.getpid()}-abcd1234"
    elsewhere = tmp_path / f".old.zarr.writing-otherhost-{dead.stdout.strip()}-abcd1234"
    for folder in (abandoned, live, elsewhere):
        (folder / "signal").mkdir(parents=True)
    datasets.write(_panel(seed=1), tmp_path / "new.zarr")
    assert not abandoned.exists() and live.exists() and elsewhere.exists()
