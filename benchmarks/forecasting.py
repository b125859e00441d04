"""traffic-forecast's features and training: suanli against what a user writes instead.

The same hourly panel (generated city traffic: sensors x hours of flow, speed,
occupancy, temperature, rain, resampled once from 5-minute readings and
stored as Zarr, untimed), the same cores, in one run:

- features: suanli's steps (``forecast_target`` with its scale and baselines,
  ``lags`` with seasonal lags, ``rolling`` mean and std, the weather's lags,
  ``calendar``, ``origins``, the split), from the Zarr store to a written
  ``features.zarr`` on a local cluster of worker processes; against pandas in
  one process (``groupby("unit").shift()`` and ``groupby().rolling()``, the same
  columns, from a long DataFrame already in memory, nothing written: both in
  pandas' favour); and, where it installs, mlforecast's ``DistributedMLForecast``
  on the same Dask cluster (``preprocess``: the same target lags and rolling
  means, from a Dask DataFrame already in memory);
- training: suanli's data-parallel exact ridge (alpha by leave-one-out) on the
  features' training rows, against scikit-learn's ``RidgeCV`` on the same rows
  in one process, where that fits in memory.

Reported: series x time steps per core-second, and the ratios.
Usage: python benchmarks/forecasting.py [--sensors 10000] [--days 364]
[--train-sensors 1000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_timing import timed  # benchmarks/ is the script folder: on sys.path

from suanli import cluster, datasets, pipelines
from suanli.pipelines.pipeline import Pipeline, load_pipeline

LAGS = [0, 1, 2, 3, 5]
#: The seasonal lags at horizon 1: the same hour one and two days and weeks back.
SEASONAL = [23, 47, 167, 335]
SPANS = [3, 24, 168]
WEATHER = ["temperature", "rain", "speed"]


def hourly_store(active: cluster.Cluster, sensors: int, days: int, folder: Path) -> Path:
    """The hourly panel, made once from generated 5-minute readings (untimed)."""
    store = folder / f"traffic-hourly-{sensors}-{days}.zarr"
    if not store.exists():
        raw = datasets.open(f"synthetic://traffic?units={sensors}&days={days}&seed=0")
        resample = load_pipeline("traffic-forecast").steps[0]
        hourly = resample.apply(raw).drop_vars("label")
        hourly = hourly.chunk({"unit": min(sensors, 500), "time": -1})
        began = time.perf_counter()
        datasets.write(hourly, store, progress=True)
        print(f"prepared {store.name} in {time.perf_counter() - began:.0f} s")
    return store


def test_from(days: int) -> str:
    """The Monday after three quarters of the data: the last quarter is tested."""
    start = pd.Timestamp("2024-01-01")
    cut = start + pd.Timedelta(days=round(0.75 * days))
    return str((cut + pd.Timedelta(days=(7 - cut.weekday()) % 7)).date())


def feature_pipeline(train: bool, days: int) -> Pipeline:
    """traffic-forecast from hourly data: its steps after ``resample``, tested on the
    last quarter, no backtest."""
    spec = load_pipeline("traffic-forecast").to_mapping()
    spec["steps"] = spec["steps"][1:]
    spec["steps"][-1]["split"]["test_from"] = test_from(days)
    spec["dataset"] = None
    if not train:
        spec.pop("train")
        spec["evaluate"] = {"metrics": ["rmse"]}
    else:
        spec["evaluate"] = {"metrics": ["rmse", "mae", "mase"]}
    spec["name"] = "traffic-forecast-hourly"
    return Pipeline.from_mapping(spec)


def suanli_run(active: cluster.Cluster, store: Path, folder: Path, train: bool, days: int,
               tag: str) -> dict[str, float]:
    output = folder / f"run-{tag}-{time.monotonic_ns()}"
    result = pipelines.run(feature_pipeline(train, days), str(store), cluster=active,
                           output=output)
    timings = result.manifest["timings"]
    return {"features": timings["features"], "training": timings.get("training", math.nan),
            "total": timings["total"], "rmse": result.metrics.get("rmse", math.nan)}


def long_frame(store: Path, units: slice = slice(None)) -> pd.DataFrame:
    """The panel (or some of its units) as the long table a pandas user starts from
    (untimed)."""
    ds = datasets.open(store).isel(unit=units).load()
    units, times = ds.sizes["unit"], ds.sizes["time"]
    frame = pd.DataFrame({
        "unit": np.repeat(np.arange(units, dtype=np.int32), times),
        "time": np.tile(datasets.timestamps(ds), units)})
    for k, channel in enumerate(map(str, ds.channel.values)):
        frame[channel] = ds.signal.values[:, :, k].reshape(-1)
    return frame


def pandas_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The same columns as the suanli steps, by groupby shift and rolling."""
    grouped = frame.groupby("unit", sort=False)
    flow = grouped["flow"]
    out = pd.DataFrame(index=frame.index)
    scale = flow.rolling(168, min_periods=84).mean().reset_index(level=0, drop=True)
    scale = scale.where(scale > 0)
    out["label"] = flow.shift(-1) / scale
    out["scale"] = scale
    out["persistence"] = frame["flow"]
    out["naive_1D"] = flow.shift(23)
    out["naive_7D"] = flow.shift(167)
    for k in (*LAGS, *SEASONAL):
        out[f"flow(t-{k})"] = flow.shift(k) / scale
    for span in SPANS:
        window = flow.rolling(span, min_periods=math.ceil(span / 2))
        out[f"mean({span})"] = window.mean().reset_index(level=0, drop=True) / scale
        out[f"std({span})"] = window.std().reset_index(level=0, drop=True) / scale
    for channel in WEATHER:
        for k in (0, 1):
            out[f"{channel}(t-{k})"] = grouped[channel].shift(k)
    return out


def pandas_timing(store: Path, repeats: int, units: slice = slice(None)) -> float:
    frame = long_frame(store, units)
    return timed(lambda: pandas_features(frame), repeats)


def mlforecast_features(active: cluster.Cluster, frame: pd.DataFrame) -> float | str:
    """mlforecast's DistributedMLForecast.preprocess on the same Dask cluster: the
    target's lags (as mlforecast counts them, from the target time) and rolling
    means and standard deviations. Seconds, or why it did not run."""
    try:
        import dask.dataframe as dd
        from mlforecast.distributed import DistributedMLForecast
        from mlforecast.distributed.models.dask.xgb import DaskXGBForecast
        from mlforecast.lag_transforms import RollingMean, RollingStd
    except ImportError as error:
        return f"not installed here ({error.name})"
    data = frame.rename(columns={"unit": "unique_id", "time": "ds", "flow": "y"})[
        ["unique_id", "ds", "y"]]
    # mlforecast refuses missing targets ("y column contains null values"): the
    # outages' hours are filled with 0 for it (its timing, not its values, is compared).
    data["y"] = data["y"].fillna(0.0)
    partitions = len(active.client.scheduler_info()["workers"])
    ddf = dd.from_pandas(data, npartitions=partitions).persist()
    transforms = [cls(window_size=span, min_samples=math.ceil(span / 2))
                  for span in SPANS for cls in (RollingMean, RollingStd)]
    forecaster = DistributedMLForecast(
        models=[DaskXGBForecast()], freq="h", num_partitions=partitions,
        lags=[k + 1 for k in (*LAGS, *SEASONAL)], lag_transforms={1: transforms})

    def once() -> None:
        forecaster.preprocess(ddf, dropna=False).compute()

    try:
        return timed(once, 1)
    except Exception as error:  # a peer's failure is a result, not the benchmark's end
        return f"failed: {type(error).__name__}: {str(error).splitlines()[0][:160]}"


def sklearn_training(frame: pd.DataFrame, features: pd.DataFrame, test_from: str) -> float:
    from sklearn.linear_model import RidgeCV

    columns = [c for c in features.columns if c not in ("label", "scale", "persistence",
                                                         "naive_1D", "naive_7D")]
    train = (frame["time"] + pd.Timedelta("1h") < pd.Timestamp(test_from)).to_numpy()
    X = features.loc[train, columns].to_numpy(np.float64)
    y = features.loc[train, "label"].to_numpy(np.float64)
    keep = np.isfinite(X).all(axis=1) & np.isfinite(y)
    X, y = X[keep], y[keep]

    def once() -> None:
        X_scaled = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1)
        RidgeCV(alphas=np.logspace(-3, 3, 10)).fit(X_scaled, y)

    return timed(once, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=364)
    parser.add_argument("--train-sensors", type=int, default=500,
                        help="size of the training comparison (scikit-learn holds it all)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--pandas-batch", type=int, default=1_000,
                        help="sensors per pandas batch (the whole table does not fit)")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir())
                        / "suanli-bench-forecasting")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    args.folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    with cluster.start("local", workers=cores, threads_per_worker=1,
                       dashboard_address=None) as active:
        store = hourly_store(active, args.sensors, args.days, args.folder)
        small = hourly_store(active, args.train_sensors, args.days, args.folder)
        steps = args.sensors * datasets.open(store).sizes["time"]
        small_steps = args.train_sensors * datasets.open(small).sizes["time"]
        results["suanli features"] = timed(
            lambda: suanli_run(active, store, args.folder, False, args.days, "features")[
                "total"], args.repeats)
        trained = suanli_run(active, small, args.folder, True, args.days, "trained")
    # pandas: the whole table does not fit in memory here, so a user goes sensor batch
    # by sensor batch; only the features are timed, not the reading.
    results["pandas features"] = sum(
        pandas_timing(store, args.repeats, units=slice(first, first + args.pandas_batch))
        for first in range(0, args.sensors, args.pandas_batch))
    results["pandas small"] = pandas_timing(small, args.repeats)
    small_frame = long_frame(small)
    small_features = pandas_features(small_frame)
    results["scikit-learn RidgeCV"] = sklearn_training(small_frame, small_features,
                                                       test_from(args.days))
    del small_frame, small_features
    with cluster.start("local", workers=cores, threads_per_worker=1,
                       dashboard_address=None) as active:
        results["mlforecast small"] = mlforecast_features(active, long_frame(small))
        results["mlforecast preprocess"] = mlforecast_features(active, long_frame(store))

    print(f"\nmachine: {platform.processor() or platform.machine()}, {cores} cores; "
          f"suanli on {cores} worker processes x 1 thread; pandas and scikit-learn in one "
          f"process; dask {version('dask')}, pandas {version('pandas')}, scikit-learn "
          f"{version('scikit-learn')}; pandas in batches of {args.pandas_batch} sensors")
    with contextlib.suppress(PackageNotFoundError):
        print(f"mlforecast {version('mlforecast')}")
    print(f"features: {args.sensors} sensors x {steps // args.sensors} hours "
          f"({steps / 1e6:.1f} M series x steps)")
    for name in ("suanli features", "pandas features", "mlforecast preprocess"):
        value = results[name]
        if isinstance(value, str):
            print(f"  {name:<24} {value}")
            continue
        print(f"  {name:<24} {value:8.1f} s  {steps / value / cores / 1e6:7.3f} M series-steps "
              f"per core-second")
    ratio = results["pandas features"] / results["suanli features"]
    print(f"  suanli / pandas: {ratio:.2f}x the throughput on the same cores")
    print(f"features at {args.train_sensors} sensors ({small_steps / 1e6:.1f} M series x steps):"
          f" suanli {trained['features']:.1f} s (in its run), "
          f"{small_steps / trained['features'] / cores / 1e6:.3f} M per core-second")
    for name in ("pandas small", "mlforecast small"):
        value = results[name]
        print(f"  {name:<24} " + (value if isinstance(value, str) else
                                  f"{value:8.1f} s  {small_steps / value / cores / 1e6:7.3f} M "
                                  f"series-steps per core-second"))
    print(f"training: {args.train_sensors} sensors ({small_steps / 1e6:.1f} M series x steps); "
          f"suanli run: features {trained['features']:.1f} s, training {trained['training']:.1f}"
          f" s (RMSE {trained['rmse']:.2f})")
    print(f"  scikit-learn RidgeCV      {results['scikit-learn RidgeCV']:8.1f} s (the same "
          f"features' training rows, standardised, in memory)")
    print(f"  suanli / scikit-learn: {results['scikit-learn RidgeCV'] / trained['training']:.2f}"
          f"x")


if __name__ == "__main__":
    main()
