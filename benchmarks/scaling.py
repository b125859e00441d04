"""Strong and weak scaling of sensor-faults (features and data-parallel training) with
``pipelines.scaling``, and the tool's own cost against plain runs.

1. Generates a telemetry plant into Zarr once (``--units`` x 10 minutes at 1024 Hz x 3
   channels, float32), as a user's stored dataset, so every point reads the same files.
2. ``pipelines.scaling("sensor-faults", ..., mode="both")`` on a local cluster of 1
   thread per worker, each point a fresh cluster, ``--repeats`` runs each.
3. The same pipeline run plainly (``pipelines.run`` on a fresh cluster, the workers
   restarted between repeats, nothing recorded beyond what a run records) at each
   strong-scaling size: the ratio of the sweep's median to the plain median is what
   measuring adds inside the measured time.

Prints the sweep's table, each stage's speedup and weak efficiency (features,
training), the verdicts and the overhead shares.

Usage: python benchmarks/scaling.py [--units 256] [--workers 1,2] [--repeats 3]
       [--data /tmp/suanli-bench-plant.zarr] [--output benchmarks-out/scaling]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

from suanli import cluster, datasets, pipelines

STAGES = ("features", "training")


def plain_medians(data: str, workers: list[int], repeats: int, scratch: Path
                  ) -> dict[int, float]:
    """Median seconds of plain ``pipelines.run`` calls on a fresh cluster per size."""
    medians = {}
    for count in workers:
        spec = cluster.with_workers(cluster.plan("local", threads_per_worker=1,
                                                 dashboard_address="127.0.0.1:0"), count)
        seconds = []
        with cluster.start(spec) as active:
            pipelines.run("sensor-faults", data, cluster=active, output=scratch / "warm")
            for repeat in range(repeats):
                active.client.restart()
                began = time.perf_counter()
                pipelines.run("sensor-faults", data, cluster=active,
                              output=scratch / f"plain-{count}-{repeat}")
                seconds.append(time.perf_counter() - began)
        shutil.rmtree(scratch, ignore_errors=True)
        medians[count] = statistics.median(seconds)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default="/tmp/suanli-bench-plant.zarr")
    parser.add_argument("--output", default="benchmarks-out/scaling")
    args = parser.parse_args()
    workers = [int(k) for k in args.workers.split(",")]
    if not Path(args.data).exists():
        datasets.generate("telemetry", args.data, units=args.units, minutes=10)
    data = datasets.open(args.data)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.data}: {data.sizes['unit']} units, {data.nbytes / 1e9:.2f} GB")
    shutil.rmtree(args.output, ignore_errors=True)
    result = pipelines.scaling("sensor-faults", args.data, "local", workers, mode="both",
                               repeats=args.repeats, output=args.output, say=print)
    print(result.summary())
    record = result.record
    for mode in ("strong", "weak"):
        points = record["modes"][mode]["points"]
        for stage in STAGES:
            base = points[0]["stage_seconds"][stage]
            parts = []
            for p in points:
                ratio = base / p["stage_seconds"][stage]
                figure = (f"speedup {ratio:.2f}, efficiency {ratio / p['workers']:.0%}"
                          if mode == "strong" else f"efficiency {ratio:.0%}")
                parts.append(f"{p['workers']}: {p['stage_seconds'][stage]:.2f} s ({figure})")
            print(f"{mode} {stage}: {'; '.join(parts)}")
    scratch = Path(args.output).with_name("scaling-plain")
    plain = plain_medians(args.data, workers, args.repeats, scratch)
    for point in record["modes"]["strong"]["points"]:
        k, median = point["workers"], point["seconds"]["median"]
        print(f"plain run on {k} worker(s): {plain[k]:.2f} s; sweep's median {median:.2f} s "
              f"(ratio {median / plain[k]:.3f})")
    overhead = record["overhead"]
    print(f"outside the measured runs: tool {overhead['tool_seconds']:.1f} s "
          f"({overhead['tool_share']:.1%} of {overhead['measured_seconds']:.1f} s measured), "
          f"cluster starts {overhead['cluster_start_seconds']:.1f} s, restarts "
          f"{overhead['restart_seconds']:.1f} s, warm-up {overhead['warmup_seconds']:.1f} s")


if __name__ == "__main__":
    main()
