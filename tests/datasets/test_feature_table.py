"""Features as a Parquet table (datasets/feature_table.py): a row per unit and window,
read by plain pyarrow and pandas, and back by suanli as the Dataset it was written
from, for each pipeline's kind of features."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr

from suanli import datasets, pipelines
from suanli.datasets import DatasetError
from suanli.datasets.feature_table import FILE_BYTES, row_dims


def _features(units: int = 5, windows: int = 7) -> xr.Dataset:
    """Each kind of variable a pipeline's features have, with Dask blocks of units."""
    rng = np.random.default_rng(0)
    shape = (units, windows, 2, 3)
    return xr.Dataset(
        {"power": (("unit", "window", "channel", "band"),
                   da.from_array(rng.standard_normal(shape).astype("f4"), chunks=(2, -1, -1, -1)),
                   {"units": "dB"}),
         "label": ("unit", np.arange(units, dtype="i2") % 2),
         "split": ("unit", np.array(["train", "test", "train", "train", "test"][:units],
                                    dtype=object)),
         "target": (("unit", "window"), rng.standard_normal((units, windows))),
         "calendar": (("window", "day"), rng.integers(0, 2, (windows, 4)).astype("f4")),
         "biases": ("kernel", rng.standard_normal(6).astype("f4"))},
        coords={"unit": [f"pump-{i}" for i in range(units)], "window": np.arange(windows),
                "origin_time": ("window", pd.date_range("2024-03-01", periods=windows,
                                                        freq="h").values, {"tz": "UTC"}),
                "channel": ["vibration", "current"], "band": ["low", "mid", "high"]},
        attrs={"scenario": "test", "sample_rate": 1024.0})


def test_a_row_per_unit_and_window_with_a_column_per_feature_value(tmp_path: Path) -> None:
    ds = _features()
    path = datasets.write(ds, tmp_path / "features.parquet")
    table = pd.read_parquet(path)  # plain pandas: the manifest is skipped (leading _)
    assert len(table) == 5 * 7
    assert list(table.columns[:3]) == ["unit", "window", "origin_time"]
    assert {"power[current,mid]", "label", "split", "target", "calendar[2]"} <= set(table)
    assert "biases" not in table  # no row dimension: kept in the metadata
    row = table[(table["unit"] == "pump-3") & (table["window"] == 4)].iloc[0]
    assert row["power[current,mid]"] == ds["power"].values[3, 4, 1, 1]
    assert row["calendar[2]"] == ds["calendar"].values[4, 2]
    assert row["split"] == "train" and row["label"] == 1
    assert row["origin_time"] == pd.Timestamp("2024-03-01T04:00")
    back = datasets.open(str(path))
    xr.testing.assert_identical(back, ds.compute())
    assert back["origin_time"].attrs == {"tz": "UTC"} and back["power"].attrs == {"units": "dB"}
    assert datasets.verify(path).ok


def test_units_are_split_over_files_in_order(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("suanli.datasets.feature_table.FILE_BYTES", 2 * 7 * 2 * 3 * 4 * 3)
    assert FILE_BYTES > 1000  # the module's own figure is untouched
    ds = _features()
    path = Path(datasets.write(ds, tmp_path / "features.parquet"))
    parts = sorted(path.glob("part-*.parquet"))
    assert len(parts) > 1
    assert pq.read_table(parts[0]).column("unit").to_pylist()[0] == "pump-0"
    xr.testing.assert_identical(datasets.open(str(path)), ds.compute())


@pytest.mark.parametrize("name, uri", [
    ("sensor-faults", "synthetic://telemetry?units=3&minutes=1&seed=0"),
    ("vitals-alerts", "synthetic://vitals?units=3&seed=0"),
    ("series-classify", "synthetic://shapes?units=6&seed=0"),
])
def test_every_pipelines_features_round_trip(tmp_path: Path, name: str, uri: str) -> None:
    ds = datasets.open(uri)
    transformed = pipelines.load_pipeline(name).resolve(ds).transform(ds)
    features = transformed[[k for k, v in transformed.data_vars.items()
                            if not {"time", "offset"} & set(v.dims)]].compute()
    assert row_dims(features) == ("unit", "window")
    path = datasets.write(features, tmp_path / "features.parquet")
    xr.testing.assert_identical(datasets.open(str(path)), features)


def test_tables_that_cannot_be_features_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="needs a 'unit' dimension"):
        datasets.write(xr.Dataset({"x": ("window", np.arange(3))}),
                       tmp_path / "no-unit.parquet")
    clash = _features().assign_coords(band=["low", "low", "high"])
    with pytest.raises(DatasetError, match=r"share the column 'power\[vibration,low\]'"):
        datasets.write(clash, tmp_path / "clash.parquet")
    assert not list(tmp_path.iterdir())  # nothing half-written
    # A table whose rows were edited afterwards is not read as features.
    path = Path(datasets.write(_features(), tmp_path / "features.parquet"))
    part = next(path.glob("part-*.parquet"))
    table = pq.read_table(part)
    pq.write_table(table.slice(1), part)  # a row dropped, metadata kept
    (path / "_suanli-manifest.json").unlink()  # not a checksum failure: the grid is
    with pytest.raises(DatasetError, match="not one complete unit x window grid"):
        datasets.open(str(path))
