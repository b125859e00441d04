"""Every format and layout opens as a panel (or a gridded dataset): real files, real S3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.config
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from suanli import datasets
from suanli.datasets import DatasetError

RATE = 100.0


@pytest.fixture(scope="module")
def panel() -> xr.Dataset:
    rng = np.random.default_rng(7)
    signal = rng.standard_normal((4, 500, 3)).astype("f4")
    signal[1, 10:14, :] = np.nan  # a gap, as real exports have
    return datasets.from_arrays(signal, sample_rate=RATE, channels=["x", "y", "z"],
                                units=["m1", "m2", "m3", "m4"], label=["ok", "bad", "ok", "ok"])


def _long(ds: xr.Dataset) -> pd.DataFrame:
    values = ds.signal.values
    units, times, channels = values.shape
    return pd.DataFrame({
        "unit": np.repeat(ds.unit.values, times * channels),
        "time": np.tile(np.repeat(np.arange(times) / RATE, channels), units),
        "channel": np.tile(ds.channel.values, units * times),
        "value": values.ravel(),
        "label": np.repeat(datasets.text_values(ds.label.values), times * channels),
    })


def _wide(ds: xr.Dataset) -> pd.DataFrame:
    frame = _long(ds)
    wide = frame.pivot_table(index=["unit", "time"], columns="channel", values="value",
                             dropna=False).reset_index()
    wide.columns.name = None
    return wide


def _same(back: xr.Dataset, ds: xr.Dataset) -> None:
    back = back.sel(channel=list(ds.channel.values))
    np.testing.assert_array_equal(back.signal.values, ds.signal.values)
    assert [str(u) for u in back.unit.values] == [str(u) for u in ds.unit.values]
    assert datasets.sample_rate(back) == pytest.approx(RATE)


def test_long_csv_gzip(panel: xr.Dataset, tmp_path: Path) -> None:
    _long(panel).to_csv(tmp_path / "export.csv.gz", index=False)
    back = datasets.open(tmp_path / "export.csv.gz", label="label")
    _same(back, panel)
    assert datasets.text_values(back.label.values).tolist() == ["ok", "bad", "ok", "ok"]


def test_wide_csv_folder_and_glob(panel: xr.Dataset, tmp_path: Path) -> None:
    wide = _wide(panel)
    (tmp_path / "exports").mkdir()
    for unit, part in wide.groupby("unit"):
        part.to_csv(tmp_path / "exports" / f"{unit}.csv", index=False)
    _same(datasets.open(tmp_path / "exports"), panel)
    _same(datasets.open(str(tmp_path / "exports" / "m*.csv")), panel)


def test_parquet_folder_written_by_suanli_and_by_pandas(panel: xr.Dataset,
                                                        tmp_path: Path) -> None:
    written = datasets.write(panel, tmp_path / "out.parquet")
    back = datasets.open(written, label="label")
    _same(back, panel)
    assert datasets.verify(written).ok
    (tmp_path / "by-pandas").mkdir()
    long = _long(panel)
    for i, (_, part) in enumerate(long.groupby("unit")):
        part.to_parquet(tmp_path / "by-pandas" / f"part{i}.parquet", index=False)
    _same(datasets.open(tmp_path / "by-pandas"), panel)


# Someone else's store, written with fixed-width strings (Zarr warns about v3 for those).
@pytest.mark.filterwarnings("ignore:The data type")
def test_zarr_v2_and_v3_stores(panel: xr.Dataset, tmp_path: Path) -> None:
    for version in (2, 3):
        store = tmp_path / f"v{version}.zarr"
        plain = panel.copy()
        plain["label"] = plain.label.astype(str)
        plain.to_zarr(store, zarr_format=version, consolidated=version == 2)
        back = datasets.open(store)
        np.testing.assert_array_equal(back.signal.values, panel.signal.values)


def test_several_netcdf_files_combine_along_time(panel: xr.Dataset, tmp_path: Path) -> None:
    stamped = panel.drop_vars("label").drop_indexes("time").assign_coords(
        time=pd.date_range("2026-03-01", periods=panel.sizes["time"], freq="10ms"))
    stamped["time"].attrs = {}
    for i, start in enumerate(range(0, 500, 200)):
        stamped.isel(time=slice(start, start + 200)).to_netcdf(tmp_path / f"day{i}.nc",
                                                               engine="h5netcdf")
    back = datasets.open(str(tmp_path / "day*.nc"))
    assert back.sizes["time"] == 500
    np.testing.assert_array_equal(back.signal.values, panel.signal.values)
    assert datasets.sample_rate(back) == pytest.approx(RATE)


def test_gridded_netcdf_stays_plain_xarray(tmp_path: Path) -> None:
    grid = xr.Dataset({"temperature": (("lat", "lon"), np.arange(12.0).reshape(3, 4))},
                      coords={"lat": [10.0, 20.0, 30.0], "lon": [0.0, 1.0, 2.0, 3.0]})
    grid.to_netcdf(tmp_path / "grid.nc", engine="h5netcdf")
    back = datasets.open(tmp_path / "grid.nc")
    xr.testing.assert_identical(back.load(), grid)


def test_from_frame_errors_name_the_column(panel: xr.Dataset) -> None:
    long = _long(panel)
    with pytest.raises(DatasetError, match="'machine'"):
        datasets.from_frame(long, unit="machine")
    doubled = pd.concat([long, long.iloc[:3]])
    with pytest.raises(DatasetError, match="duplicate"):
        datasets.from_frame(doubled)
    words = long.assign(value=long["value"].astype(str))
    with pytest.raises(DatasetError, match="numbers"):
        datasets.from_frame(words, layout="long")


def test_catalog_names_a_dataset(panel: xr.Dataset, tmp_path: Path) -> None:
    _long(panel).to_csv(tmp_path / "plant.csv", index=False)
    entry = {"uri": str(tmp_path / "plant.csv"), "label": "label",
             "description": "line A, exported nightly"}
    with dask.config.set({"suanli.datasets.catalog.plant-a": entry}):
        assert "plant-a" in datasets.catalog()
        _same(datasets.open("plant-a"), panel)
    with dask.config.set({"suanli.datasets.catalog.broken": {"path": "x"}}), \
            pytest.raises(DatasetError, match="needs a 'uri'"):
        datasets.open("broken")


def test_chunking_policy_amortises_task_overhead_and_fits_memory() -> None:
    chunks = datasets.panel_chunks(units=64, samples=10_000_000, channels=3, itemsize=4)
    assert chunks["unit"] == 1 and 3 * 4 * chunks["time"] <= 48 * 2**20
    assert 3 * 4 * chunks["time"] >= 32 * 2**20
    small = datasets.panel_chunks(units=1000, samples=1000, channels=3, itemsize=4)
    assert small["time"] == 1000 and small["unit"] > 100
    assert datasets.target_chunk_bytes(worker_memory=2**30, threads_per_worker=4) <= 2**30 // 32
    with dask.config.set({"suanli.datasets.chunk-size": "8MiB"}):
        assert datasets.target_chunk_bytes() == 8 * 2**20


def test_object_storage_parquet_csv_and_netcdf(s3: dict[str, Any], panel: xr.Dataset,
                                               tmp_path: Path) -> None:
    fs = s3["fs"]
    long = _long(panel)
    long.to_csv(tmp_path / "a.csv.gz", index=False)
    fs.put(str(tmp_path / "a.csv.gz"), "suanli-test/csv/a.csv.gz")
    for i, (_, part) in enumerate(_wide(panel).groupby("unit")):
        part.to_parquet(tmp_path / f"p{i}.parquet", index=False)
        fs.put(str(tmp_path / f"p{i}.parquet"), f"suanli-test/parquet/p{i}.parquet")
    panel.drop_vars("label").to_netcdf(tmp_path / "n.nc", engine="h5netcdf")
    fs.put(str(tmp_path / "n.nc"), "suanli-test/nc/n.nc")
    options = s3["options"]
    _same(datasets.open("s3://suanli-test/csv/a.csv.gz", storage_options=options), panel)
    _same(datasets.open("s3://suanli-test/parquet/", storage_options=options,
                        format="parquet"), panel)
    _same(datasets.open("s3://suanli-test/parquet/p*.parquet", storage_options=options),
          panel)
    gridded = datasets.open("s3://suanli-test/nc/n.nc", storage_options=options)
    np.testing.assert_array_equal(gridded.signal.values, panel.signal.values)
    with pytest.raises(DatasetError, match="s3://suanli-test/nothing"):
        datasets.open("s3://suanli-test/nothing/*.csv", storage_options=options)
    local_store = datasets.write(panel, tmp_path / "panel.zarr")
    fs.put(str(local_store), "suanli-test/stores/panel.zarr", recursive=True)
    remote = datasets.open("s3://suanli-test/stores/panel.zarr", storage_options=options)
    np.testing.assert_array_equal(remote.signal.values, panel.signal.values)


def test_a_missing_optional_package_names_the_extra(panel: xr.Dataset, tmp_path: Path) -> None:
    """A user with the base install: NetCDF and s3:// name the extra to install."""
    import subprocess
    import sys

    panel.drop_vars("label").to_netcdf(tmp_path / "n.nc", engine="h5netcdf")
    code = ("import sys\n"
            "sys.modules['h5netcdf'] = sys.modules['s3fs'] = None  # as if not installed\n"
            "from suanli import datasets\n"
            "for uri in sys.argv[1:]:\n"
            "    try:\n"
            "        datasets.open(uri)\n"
            "    except datasets.DatasetError as error:\n"
            "        print(error)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "n.nc"),
                           "s3://bucket/x.parquet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    netcdf, s3 = done.stdout.splitlines()
    assert "netcdf needs the h5netcdf package" in netcdf
    assert 'pip install "suanli[netcdf]"' in netcdf
    assert str(tmp_path / "n.nc") in netcdf
    assert "s3 needs the s3fs package" in s3 and 'pip install "suanli[s3]"' in s3
