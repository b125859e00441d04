"""ETL's own cost: a 48-partition backfill of sensor-faults' features against the same
work as one plain run, and ``etl status`` on 1,000 partitions.

1. Generates 48 daily partitions of telemetry into Zarr (``--units`` units x 10 min at
   1024 Hz x 3 channels each; untimed).
2. ``pipelines.etl`` backfills them on a local cluster (1 thread per worker), planning,
   leasing, committing each partition with its manifest (``--parallel`` at once).
3. The same features as one plain run: the 48 partitions opened together (concatenated
   along units) through the pipeline's steps without its training (``pipelines.run``
   of the pipeline less its ``train`` block), on a fresh cluster of the same size.
4. ``etl status`` on a root of 1,000 committed partitions (copies of one manifest,
   written untimed), median of 5.

Usage: python benchmarks/etl.py [--units 4] [--workers 2] [--parallel 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

import xarray as xr
from bench_timing import timed

from suanli import cluster, datasets, pipelines
from suanli.pipelines.etl.state import MANIFEST

PARTITIONS = 48


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", default="/tmp/suanli-bench-etl")
    args = parser.parse_args()
    folder = Path(args.folder)
    raw = folder / "raw"
    days = [(date(2024, 1, 1) + timedelta(days=i)).isoformat() for i in range(PARTITIONS)]
    for i, day in enumerate(days):
        if not (raw / f"{day}.zarr").exists():
            datasets.generate("telemetry", raw / f"{day}.zarr", units=args.units, minutes=10,
                              seed=i, progress=False)
    nbytes = sum(datasets.open(str(raw / f"{d}.zarr")).nbytes for d in days)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{PARTITIONS} partitions x {args.units} units, {nbytes / 1e9:.2f} GB; "
          f"{args.workers} workers, {args.parallel} partitions at once")
    spec = cluster.plan("local", workers=args.workers, threads_per_worker=1,
                        dashboard_address="127.0.0.1:0")
    backfills, plains = [], []
    definition = pipelines.load_pipeline("sensor-faults").to_mapping()
    features_only = {k: v for k, v in definition.items() if k not in ("train", "evaluate")}
    for repeat in range(args.repeats):
        root = folder / f"features-{repeat}"
        shutil.rmtree(root, ignore_errors=True)
        with cluster.start(spec) as active:
            began = time.perf_counter()
            result = pipelines.etl("sensor-faults", f"{raw}/{{date}}.zarr", str(root),
                                   since=days[0], until=days[-1], cluster=active,
                                   parallel=args.parallel)
            backfills.append(time.perf_counter() - began)
            assert result.counts() == {"ran": PARTITIONS}, result.counts()
        with cluster.start(spec) as active:
            whole = xr.concat([datasets.open(str(raw / f"{d}.zarr")) for d in days],
                              dim="unit")
            began = time.perf_counter()
            pipelines.run(features_only, whole, cluster=active,
                          output=folder / f"plain-{repeat}")
            plains.append(time.perf_counter() - began)
            shutil.rmtree(folder / f"plain-{repeat}", ignore_errors=True)
        print(f"repeat {repeat}: backfill {backfills[-1]:.1f} s, plain run {plains[-1]:.1f} s")
    backfill, plain = statistics.median(backfills), statistics.median(plains)
    print(f"backfill: {backfill:.1f} s, {PARTITIONS / backfill * 60:.1f} partitions/min")
    print(f"plain run of the same features: {plain:.1f} s")
    print(f"overhead: {(backfill - plain) / plain:+.1%} "
          f"({(backfill - plain) / PARTITIONS:.2f} s per partition)")
    # etl status on 1,000 partitions: copies of one real manifest.
    many = folder / "status-1000"
    if not many.exists():
        manifest = (folder / "features-0" / f"date={days[0]}" / MANIFEST).read_text()
        for i in range(1000):
            day = (date(2021, 1, 1) + timedelta(days=i)).isoformat()
            (many / f"date={day}").mkdir(parents=True, exist_ok=True)
            (many / f"date={day}" / MANIFEST).write_text(manifest)
    seconds = timed(lambda: pipelines.etl_status(str(many)), 5)
    assert pipelines.etl_status(str(many))["counts"] == {"done": 1000}
    print(f"etl status on 1,000 partitions: {seconds:.3f} s (median of 5)")


if __name__ == "__main__":
    main()
