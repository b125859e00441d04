"""Dataset I/O: generate-and-write and read-and-reduce beside the disk, and table ingest
beside pandas and pyarrow, all in one run.

1. Generate telemetry several times larger than the workers' memory and write it
   with ``datasets.write`` (atomic Zarr, checksummed chunks, manifest) on a local
   cluster whose workers have a small memory limit; the workers' peak resident
   memory is sampled throughout. The floor is the disk's own sequential write
   bandwidth, measured in the same run (incompressible 64 MiB blocks, fsync).
2. Read it back and reduce it (a mean per unit and channel) on the same cluster,
   beside the disk's sequential read of the floor file.
3. Ingest the same wide table as CSV files and as Parquet files: ``datasets.open``
   (schema check, read, reshape into a validated panel) beside plain
   ``pandas.read_csv``/``read_parquet`` and ``pyarrow`` reading the same files
   into a table (no reshape).

    python benchmarks/datasets_io.py --gib 4 --worker-memory 768MiB
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from bench_timing import timed  # benchmarks/ is the script folder: on sys.path
from dask.utils import format_bytes


def _disk_write(path: Path, nbytes: int) -> float:
    block = np.random.default_rng(0).bytes(64 * 2**20)
    began = time.perf_counter()
    with path.open("wb") as out:
        for _ in range(nbytes // len(block)):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return time.perf_counter() - began


def _disk_read(path: Path) -> float:
    began = time.perf_counter()
    with path.open("rb") as source:
        while source.read(64 * 2**20):
            pass
    return time.perf_counter() - began


class PeakMemory:
    """Samples the resident memory of some processes every 0.1 s."""

    def __init__(self, pids: list[int]) -> None:
        self.processes = [psutil.Process(p) for p in pids]
        self.peak_each = [0] * len(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for i, process in enumerate(self.processes):
                with contextlib.suppress(psutil.Error):  # a worker restarting
                    self.peak_each[i] = max(self.peak_each[i], process.memory_info().rss)
            self._stop.wait(0.1)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=4.0, help="generated dataset size")
    parser.add_argument("--worker-memory", default="768MiB")
    parser.add_argument("--table-units", type=int, default=40)
    parser.add_argument("--table-samples", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()

    from suanli import cluster, datasets

    scratch = Path(tempfile.mkdtemp(prefix="suanli-io-", dir=args.folder))
    rows: list[tuple[str, float, float, str]] = []
    try:
        nbytes = int(args.gib * 2**30)
        units = 32
        seconds = nbytes / (units * 3 * 4 * 1024.0)
        uri = f"synthetic://telemetry?units={units}&duration={seconds:.0f}s&seed=0"
        floor_file = scratch / "floor.bin"
        floor_bytes = min(nbytes, 2 * 2**30)
        write_floor = _disk_write(floor_file, floor_bytes)
        with cluster.start("local", workers=2, threads_per_worker=1,
                           memory_limit=args.worker_memory,
                           dashboard_address=None) as active:
            pids = list(active.client.run(os.getpid).values())
            ds = datasets.open(uri)
            logical = ds.signal.nbytes
            with PeakMemory(pids) as peak:
                began = time.perf_counter()
                store = datasets.write(ds, scratch / "telemetry.zarr")
                write_seconds = time.perf_counter() - began
            on_disk = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
            rows.append(("generate + write (suanli, Zarr)", write_seconds, logical / write_seconds,
                         f"{format_bytes(logical)} logical, {format_bytes(on_disk)} on disk; "
                         f"worker peaks {', '.join(format_bytes(p) for p in peak.peak_each)} "
                         f"(limit {args.worker_memory} each)"))
            rows.append(("disk sequential write (floor)", write_floor, floor_bytes / write_floor,
                         f"{format_bytes(floor_bytes)}, fsync"))
            with PeakMemory(pids) as peak:
                began = time.perf_counter()
                means = datasets.open(store).signal.mean("time").compute()
                read_seconds = time.perf_counter() - began
            assert np.isfinite(means.values).all()
            rows.append(("read + reduce (suanli, Zarr)", read_seconds, logical / read_seconds,
                         f"worker peaks {', '.join(format_bytes(p) for p in peak.peak_each)}"))
        read_floor = _disk_read(floor_file)
        rows.append(("disk sequential read (floor)", read_floor, floor_bytes / read_floor,
                     "likely from the page cache"))
        floor_file.unlink()
        shutil.rmtree(store)
        rows.extend(_tables(scratch, args.table_units, args.table_samples, args.repeats))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"{format_bytes(psutil.virtual_memory().total)} RAM, Python "
          f"{platform.python_version()}\n")
    print("| step | seconds | GB/s | notes |")
    print("|---|---:|---:|---|")
    for name, seconds, rate, notes in rows:
        print(f"| {name} | {seconds:.2f} | {rate / 1e9:.3f} | {notes} |")


def _tables(scratch: Path, units: int, samples: int, repeats: int
            ) -> list[tuple[str, float, float, str]]:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from suanli import datasets

    rng = np.random.default_rng(1)
    folders = {"csv": scratch / "csv", "parquet": scratch / "parquet"}
    for folder in folders.values():
        folder.mkdir()
    for unit in range(units):
        frame = pd.DataFrame({"unit": f"u{unit:03d}", "time": np.arange(samples) / 100.0,
                              **{c: rng.standard_normal(samples).astype("f4")
                                 for c in ("a", "b", "c")}})
        frame.to_csv(folders["csv"] / f"u{unit:03d}.csv", index=False)
        frame.to_parquet(folders["parquet"] / f"u{unit:03d}.parquet", index=False)
    values = units * samples * 3 * 4
    rows = []
    for kind, folder in folders.items():
        files = sorted(folder.iterdir())
        size = sum(f.stat().st_size for f in files)
        if kind == "csv":
            peers: dict[str, Callable[[], object]] = {
                "pandas.read_csv": lambda files=files: pd.concat(
                    [pd.read_csv(f) for f in files]),
                "pyarrow.csv.read_csv": lambda files=files: [pcsv.read_csv(f) for f in files],
            }
        else:
            peers = {
                "pandas.read_parquet": lambda folder=folder: pd.read_parquet(folder),
                "pyarrow.parquet.read_table": lambda folder=folder: pq.read_table(folder),
            }
        ours = timed(lambda folder=folder: datasets.open(folder).signal.values, repeats)
        rows.append((f"{kind} ingest: suanli datasets.open (to a panel)", ours, values / ours,
                     f"{len(files)} files, {format_bytes(size)} on disk"))
        for name, run in peers.items():
            seconds = timed(run, repeats)
            rows.append((f"{kind} ingest: {name}", seconds, values / seconds,
                         f"suanli takes {ours / seconds:.2f}x this"))
    return rows


if __name__ == "__main__":
    main()
