"""MiniRocket and ridge: suanli on a local cluster against aeon and scikit-learn.

The same generated series (the ``shapes`` scenario: 2 channels, 1 Hz, classes
that differ in shape and timing), the same cores, in one run:

- transform: suanli's ``rocket_features`` step on a local cluster of worker
  processes (the series held on the workers, untimed; biases fitted on the
  training units, then every series transformed; the features stay on the
  workers), against aeon's ``MiniRocket`` (Numba, one process, ``n_jobs`` = all
  cores; fit on the training series, transform of all) on the same array;
- a trained model: ``suanli run series-classify`` from a Zarr store (features
  written, exact ridge with leave-one-out alpha, metrics, plots) against aeon's
  transform plus scikit-learn's ``RidgeClassifierCV`` (features standardised,
  the same alphas), from the same store; both score the same test units.

Needs the ``bench`` extra (aeon, scikit-learn): in a separate environment, since
aeon pins older numba and numpy than suanli's test environment uses.
Usage: python benchmarks/rocket.py [--series 20000] [--length 500] [--repeats 3]
[--trained 10000]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
from bench_timing import timed  # benchmarks/ is the script folder: on sys.path

from suanli import cluster, datasets, pipelines
from suanli.pipelines import StepCall

ALPHAS = np.logspace(-3, 3, 10)


def shapes(series: int, length: int) -> str:
    return f"synthetic://shapes?units={series}&length={length}&seed=0&chunk_units=1000"


def suanli_transform(active: cluster.Cluster, series: int, length: int, repeats: int) -> float:
    from distributed import wait

    ds = datasets.open(shapes(series, length))
    ds = StepCall("split", {}).apply(StepCall("window", {"size": "series"}).apply(ds))
    ds = ds.assign(windows=ds.windows.copy(data=ds.windows.data.persist()))  # on the workers
    wait(ds.windows.data)
    step = StepCall("rocket_features", {"features": 10_000})

    def once() -> None:
        features = step.apply(ds)["rocket"].data.persist()
        wait(features)
        del features

    once()  # each worker loads (or compiles) the kernel: not timed
    return timed(once, repeats)


def aeon_transform(values: np.ndarray, train: np.ndarray, repeats: int) -> float:
    from aeon.transformations.collection.convolution_based import MiniRocket

    X = np.ascontiguousarray(values.transpose(0, 2, 1))  # (series, channel, time)

    def once() -> None:
        MiniRocket(n_kernels=10_000, n_jobs=os.cpu_count() or 1, random_state=0).fit(
            X[train]).transform(X)

    MiniRocket(n_kernels=10_000, n_jobs=os.cpu_count() or 1, random_state=0).fit(
        X[:50]).transform(X[:50])  # compile: not timed
    return timed(once, repeats)


def trained(active: cluster.Cluster, series: int, length: int, folder: Path
            ) -> tuple[float, float, float, float]:
    """Seconds and test accuracy of suanli's series-classify and of aeon + scikit-learn."""
    store = folder / f"shapes-{series}.zarr"
    if not store.exists():
        datasets.write(datasets.open(shapes(series, length)), store)
    return trained_on(active, store, folder)


def accuracy_on_tasks(active: cluster.Cluster, folder: Path) -> list[tuple[str, float, float]]:
    """series-classify against aeon + scikit-learn on several generated tasks where shape
    matters: the shapes scenario at several noise levels and lengths."""
    rows = []
    for length, noise in ((150, 0.3), (150, 1.0), (150, 2.0), (400, 1.5)):
        uri = f"synthetic://shapes?units=2000&length={length}&noise={noise}&seed=1"
        store = folder / f"shapes-{length}-{noise}.zarr"
        datasets.write(datasets.open(uri), store)
        _, ours_accuracy, _, theirs = trained_on(active, store, folder)
        rows.append((f"shapes, length {length}, noise {noise}", ours_accuracy, theirs))
    return rows


def trained_on(active: cluster.Cluster, store: Path, folder: Path
               ) -> tuple[float, float, float, float]:
    """As :func:`trained`, on a store already written."""
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    began = time.perf_counter()
    run = pipelines.run("series-classify", str(store), cluster=active,
                        output=folder / f"run-{time.time_ns()}")
    ours = time.perf_counter() - began
    split = datasets.open(str(run.outputs["features"]))["split"].values
    began = time.perf_counter()
    opened = datasets.open(store)
    X = np.ascontiguousarray(opened.signal.values.transpose(0, 2, 1))
    y = opened.label.values
    train, test = split == "train", split == "test"
    rocket = MiniRocket(n_kernels=10_000, n_jobs=os.cpu_count() or 1, random_state=0)
    features = rocket.fit(X[train]).transform(X)
    scaler = StandardScaler().fit(features[train])
    model = RidgeClassifierCV(alphas=ALPHAS).fit(scaler.transform(features[train]), y[train])
    accuracy = float((model.predict(scaler.transform(features[test])) == y[test]).mean())
    return ours, float(run.metrics["accuracy"]), time.perf_counter() - began, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trained", type=int, default=10_000,
                        help="series for the time-to-a-trained-model rows (0: skip them)")
    parser.add_argument("--tasks", action="store_true",
                        help="only the accuracy of both on several generated tasks")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    values = datasets.open(shapes(args.series, args.length)).signal.values
    split = StepCall("split", {}).apply(datasets.open(shapes(args.series, args.length)))
    train = split["split"].values == "train"
    if args.tasks:
        with cluster.start("local", workers=cores, threads_per_worker=1,
                           dashboard_address=None) as active, \
                tempfile.TemporaryDirectory(prefix="suanli-rocket-") as folder:
            found = accuracy_on_tasks(active, Path(folder))
        print("| task (2,000 series, 25% test) | series-classify | aeon MiniRocket + "
              "RidgeClassifierCV | difference |")
        print("|---|---:|---:|---:|")
        for name, ours, theirs in found:
            print(f"| {name} | {ours:.3f} | {theirs:.3f} | {ours - theirs:+.3f} |")
        return
    rows: dict[str, float] = {}
    with cluster.start("local", workers=cores, threads_per_worker=1,
                       dashboard_address=None) as active:
        rows["suanli rocket_features, local cluster"] = suanli_transform(
            active, args.series, args.length, args.repeats)
        rows["aeon MiniRocket, one process"] = aeon_transform(values, train, args.repeats)
        if args.trained:
            with tempfile.TemporaryDirectory(prefix="suanli-rocket-") as folder:
                ours, ours_accuracy, theirs, their_accuracy = trained(
                    active, args.trained, args.length, Path(folder))
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores; "
          f"aeon {version('aeon')}, scikit-learn {version('scikit-learn')}, numba "
          f"{version('numba')}, dask {version('dask')}; median of {args.repeats}\n")
    print(f"transform of {args.series} series x {args.length} samples x 2 channels, "
          "~10,000 features:\n")
    print("| method | seconds | series/s | aeon / this |")
    print("|---|---:|---:|---:|")
    aeon = rows["aeon MiniRocket, one process"]
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.2f} | {args.series / seconds:,.0f} | "
              f"{aeon / seconds:.2f} |")
    if args.trained:
        print(f"\ntime to a trained, scored model, {args.trained} series:\n")
        print("| method | seconds | test accuracy |")
        print("|---|---:|---:|")
        print(f"| suanli run series-classify (Zarr in, run directory out) | {ours:.1f} | "
              f"{ours_accuracy:.3f} |")
        print(f"| aeon MiniRocket + scikit-learn RidgeClassifierCV | {theirs:.1f} | "
              f"{their_accuracy:.3f} |")


if __name__ == "__main__":
    main()
