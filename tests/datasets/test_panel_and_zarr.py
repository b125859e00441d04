from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from suanli import datasets
from suanli.datasets import DatasetError


def _panel(**extra: object) -> xr.Dataset:
    rng = np.random.default_rng(0)
    return datasets.from_arrays(rng.standard_normal((4, 256, 2)).astype("f4"), sample_rate=64,
                                channels=["a", "b"], **extra)  # type: ignore[arg-type]


def test_zarr_round_trip_keeps_values_labels_and_attrs(tmp_path: Path) -> None:
    ds = _panel(label=["ok", "bad", "ok", "bad"], split=["train", "train", "test", "test"])
    path = datasets.write(ds, tmp_path / "p.zarr")
    back = datasets.validate(datasets.open(path))
    np.testing.assert_array_equal(back.signal.values, ds.signal.values)
    assert datasets.text_values(back.label.values).tolist() == ["ok", "bad", "ok", "bad"]
    assert datasets.sample_rate(back) == 64.0


def test_written_stores_open_cleanly_in_plain_xarray_and_scikit_learn(tmp_path: Path) -> None:
    """Other tools open suanli's output as any Zarr store: no warning (consolidated
    metadata, the manifest unseen), text as NumPy strings that scikit-learn accepts."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    ds = _panel(label=["ok", "bad", "ok", "bad"], split=["train", "train", "test", "test"])
    path = datasets.write(ds, tmp_path / "p.zarr")
    assert (path / "_suanli-manifest.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = xr.open_zarr(path)
        assert back.label.dtype.kind == "U" and back.split.dtype.kind == "U"
        assert back.channel.dtype.kind == "U"
        X = back.signal.mean("time").values
        model = LogisticRegression().fit(X, back.label.values)
    assert set(model.classes_) == {"ok", "bad"}
    assert datasets.verify(path).ok


def test_zarrs_warnings_of_suanlis_deliberate_choices_stay_quiet_in_threads(
        tmp_path: Path) -> None:
    """Text as FixedLengthUTF32 and consolidated metadata are deliberate; Zarr's warnings
    of them are filtered for the whole process, so writes from several threads at once
    (ETL's partitions) raise none, even where warnings are errors. A subprocess: pytest
    resets filters that modules set while it imports them."""
    import subprocess
    import sys

    script = f"""
import concurrent.futures, numpy as np
from suanli import datasets
def write(i):
    ds = datasets.from_arrays(np.zeros((2, 64, 1), "f4"), sample_rate=8, channels=["a"],
                              label=["ok", "bad"])
    path = datasets.write(ds, fr"{tmp_path}/p{{i}}.zarr")
    return str(datasets.open(str(path)).label.values.dtype)
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    print(sorted(set(pool.map(write, range(8)))))
"""
    done = subprocess.run([sys.executable, "-W", "error", "-c", script],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "['<U3']"


def test_urls_are_written_where_they_say(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    """pathlib would make memory://p.zarr a local folder memory:/p.zarr: never. (Object
    storage proper is tested against moto in test_object_storage.py.)"""
    import dask.config

    monkeypatch.chdir(tmp_path)
    # memory:// lives in one process: threads, not a session cluster's workers.
    with dask.config.set(scheduler="threads"):
        url = datasets.write(_panel(), "memory://suanli-test/p.zarr")
        assert url == "memory://suanli-test/p.zarr" and list(tmp_path.iterdir()) == []
        np.testing.assert_array_equal(datasets.open(url).signal.values,
                                      _panel().signal.values)
        assert datasets.verify(url).ok
    path = datasets.write(_panel(), f"file://{tmp_path}/local.zarr")
    assert path == tmp_path / "local.zarr" and datasets.verify(path).ok


def test_write_refuses_existing_output_without_overwrite(tmp_path: Path) -> None:
    datasets.write(_panel(), tmp_path / "p.zarr")
    with pytest.raises(DatasetError, match="output exists"):
        datasets.write(_panel(), tmp_path / "p.zarr")


def test_failed_write_leaves_previous_output_intact_and_no_partial(tmp_path: Path) -> None:
    good = _panel()
    target = datasets.write(good, tmp_path / "p.zarr")

    def explode(block: np.ndarray) -> np.ndarray:
        raise RuntimeError("disk on fire")

    bad = good.copy()
    bad["signal"] = bad.signal.chunk({"unit": 1}).copy(
        data=bad.signal.chunk({"unit": 1}).data.map_blocks(explode, dtype="f4"))
    with pytest.raises(RuntimeError, match="disk on fire"):
        datasets.write(bad, target, overwrite=True)
    np.testing.assert_array_equal(datasets.open(target).signal.values, good.signal.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.zarr"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda ds: ds.rename(signal="values"), "needs a data variable 'signal'"),
    (lambda ds: ds.rename(channel="sensor"), "must have dims"),
    (lambda ds: ds.assign(signal=ds.signal.astype("i4")), "float32 or float64"),
    (lambda ds: ds.assign(label=("machine", np.arange(7))), "'label' must have dims"),
    (lambda ds: ds.assign(label=("unit", [1.0, np.nan, 2.0, 1.0])), "missing for 1 unit"),
    (lambda ds: ds.assign(split=("unit", ["train", "val", "test", "test"])), "'val'"),
])
def test_bad_panels_are_rejected_naming_the_variable(change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError, match=message):
        datasets.validate(change(_panel()))


def test_sample_rate_from_datetime_time() -> None:
    ds = _panel().assign_coords(time=np.arange(256) * np.timedelta64(250, "ms")
                                + np.datetime64("2026-01-01"))
    assert datasets.sample_rate(ds) == pytest.approx(4.0)


def test_open_unknown_paths_and_formats(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such"):
        datasets.open(tmp_path / "missing.zarr")
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(DatasetError, match="unsupported dataset format"):
        datasets.open(other)


def test_generate_writes_a_readable_panel(tmp_path: Path) -> None:
    path = datasets.generate("telemetry", tmp_path / "t.zarr", seed=4, units=3, minutes=1,
                             progress=False)
    back = datasets.validate(datasets.open(path))
    expected = datasets.open("synthetic://telemetry?units=3&minutes=1&seed=4")
    np.testing.assert_array_equal(back.signal.values, expected.signal.values)
