"""Data-parallel training: suanli against scikit-learn and dask-ml on the same data.

A training set of several million rows of standardised features (5 classes,
Gaussian class clusters with overlap, like the sensor-faults features), one
validation set, a local cluster of worker processes for the Dask methods:

- suanli: softmax regression, data-parallel mini-batch Adam (the rows stay on the
  workers; one synchronised step per batch), on 1 and on all workers;
- scikit-learn: ``SGDClassifier(loss="log_loss").partial_fit`` over the same
  blocks in one process;
- dask-ml: ``Incremental(SGDClassifier)`` on the cluster (blocks fed to one model
  one after another).

Reported per method: samples per second (rows x passes / seconds), seconds to
reach the target validation accuracy (98% of what scikit-learn's
LogisticRegression reaches on a 200k-row sample), and the best accuracy reached.

Usage: python benchmarks/training.py [--rows 3000000] [--passes 6]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import dask.array as da
import numpy as np
from distributed import wait

from suanli import cluster
from suanli.pipelines.training.data_parallel import fit_network, rebalance
from suanli.pipelines.training.local_steps import fit_network_local_steps
from suanli.pipelines.training.network import Network

FEATURES, CLASSES, BLOCK_ROWS = 45, 5, 250_000


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    centres = np.random.default_rng(12345).standard_normal((CLASSES, FEATURES)) * 0.35
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, rows)
    X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    X += centres[y].astype(np.float32)
    return X, y


class Tracker:
    """Validation accuracy over time; when the target was first reached."""

    def __init__(self, X_val: np.ndarray, y_val: np.ndarray, target: float) -> None:
        self.X_val, self.y_val, self.target = X_val, y_val, target
        self.began = time.perf_counter()
        self.reached: float | None = None
        self.best = 0.0

    def record(self, predict: Callable[[np.ndarray], np.ndarray]) -> None:
        accuracy = float((predict(self.X_val) == self.y_val).mean())
        self.best = max(self.best, accuracy)
        if self.reached is None and accuracy >= self.target:
            self.reached = time.perf_counter() - self.began


def run_suanli(X: np.ndarray, y: np.ndarray, tracker: Tracker, workers: int, passes: int,
               batch_size: int = 65_536, local_steps: bool = False) -> float:
    with cluster.start("local", workers=workers, threads_per_worker=1,
                       dashboard_address=None) as c:
        # as the pipeline's train stage does: about two row blocks per worker thread
        X_blocks, y_blocks = rebalance(da.from_array(X, chunks=(BLOCK_ROWS, -1)), y, workers)
        wait([X_blocks, y_blocks])
        assert c.worker_count == workers
        network = Network("classification", (FEATURES, CLASSES))
        tracker.began = time.perf_counter()
        if not local_steps:
            fit_network(network, X_blocks, y_blocks, epochs=passes, batch_size=batch_size,
                        learning_rate=0.02 * (batch_size / 65_536) ** 0.5, optimizer="adam",
                        on_epoch=lambda epoch, params: tracker.record(
                            lambda Xv: network.outputs(params, Xv).argmax(axis=1)))
        else:
            # a round is a pass: every block takes enough steps to cover its rows
            steps = -(-max(X_blocks.chunks[0]) // batch_size)
            fit_network_local_steps(
                network, X_blocks, y_blocks, rounds=passes, local_steps=steps,
                batch_size=batch_size, learning_rate=0.05,
                on_epoch=lambda epoch, params: tracker.record(
                    lambda Xv: network.outputs(params, Xv).argmax(axis=1)))
        return time.perf_counter() - tracker.began


def run_sklearn(X: np.ndarray, y: np.ndarray, tracker: Tracker, passes: int) -> float:
    from sklearn.linear_model import SGDClassifier

    model = SGDClassifier(loss="log_loss", alpha=1e-5, random_state=0)
    tracker.began = time.perf_counter()
    for _ in range(passes):
        for start in range(0, len(X), BLOCK_ROWS):
            model.partial_fit(X[start:start + BLOCK_ROWS], y[start:start + BLOCK_ROWS],
                              classes=np.arange(CLASSES))
        tracker.record(model.predict)
    return time.perf_counter() - tracker.began


def run_dask_ml(X: np.ndarray, y: np.ndarray, tracker: Tracker, workers: int, passes: int
                ) -> float:
    from dask_ml.wrappers import Incremental
    from sklearn.linear_model import SGDClassifier

    with cluster.start("local", workers=workers, threads_per_worker=1,
                       dashboard_address=None):
        X_blocks = da.from_array(X, chunks=(BLOCK_ROWS, -1)).persist()
        y_blocks = da.from_array(y, chunks=(BLOCK_ROWS,)).persist()
        wait([X_blocks, y_blocks])
        model = Incremental(SGDClassifier(loss="log_loss", alpha=1e-5, random_state=0))
        tracker.began = time.perf_counter()
        for _ in range(passes):
            model.partial_fit(X_blocks, y_blocks, classes=np.arange(CLASSES))
            tracker.record(model.estimator_.predict)
        return time.perf_counter() - tracker.began


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--passes", type=int, default=6)
    args = parser.parse_args()
    X, y = make_data(args.rows)
    X_val, y_val = make_data(200_000, seed=1)
    reference = LogisticRegression(max_iter=500).fit(X[:200_000], y[:200_000]).score(X_val,
                                                                                      y_val)
    target = 0.98 * reference
    cores = os.cpu_count() or 1
    print(f"data: {args.rows:,} rows x {FEATURES} float32 features ({X.nbytes / 2**30:.2f} GiB), "
          f"{CLASSES} classes; LogisticRegression on 200k rows reaches {reference:.4f}, "
          f"target {target:.4f}; {args.passes} passes each\n")
    rows = []
    for name, run in [
        ("suanli, 1 worker", lambda t: run_suanli(X, y, t, 1, args.passes)),
        (f"suanli, {cores} workers", lambda t: run_suanli(X, y, t, cores, args.passes)),
        ("suanli, 1 worker, batch 524,288",
         lambda t: run_suanli(X, y, t, 1, args.passes, batch_size=524_288)),
        (f"suanli, {cores} workers, batch 524,288",
         lambda t: run_suanli(X, y, t, cores, args.passes, batch_size=524_288)),
        (f"suanli, {cores} workers, local steps (65,536-row steps, a pass a round)",
         lambda t: run_suanli(X, y, t, cores, args.passes, local_steps=True)),
        ("scikit-learn SGDClassifier.partial_fit, 1 process",
         lambda t: run_sklearn(X, y, t, args.passes)),
        (f"dask-ml Incremental(SGDClassifier), {cores} workers",
         lambda t: run_dask_ml(X, y, t, cores, args.passes)),
    ]:
        tracker = Tracker(X_val, y_val, target)
        seconds = run(tracker)
        rows.append((name, seconds, args.rows * args.passes / seconds, tracker.reached,
                     tracker.best))
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores\n")
    print("| method | seconds | samples/s | s to target | best accuracy |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, rate, reached, best in rows:
        to_target = f"{reached:.1f}" if reached is not None else "not reached"
        print(f"| {name} | {seconds:.1f} | {rate:,.0f} | {to_target} | {best:.4f} |")


if __name__ == "__main__":
    main()
