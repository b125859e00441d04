"""Feature extraction of ``sensor-faults``: suanli vs the peers and the machine's floors.

One process, same in-memory telemetry, same number of cores, Dask's threaded
scheduler for every Dask method (data stays in place, so the figures compare
the computations rather than transfers):

- suanli: the pipeline's steps (fill_gaps, zscore, window, window_features), run as
  `suanli run` runs them (fused: one task per chunk), one by one (unfused), and
  fused with each series split over 3 chunks (as long recordings are);
- xarray+Dask by hand: coarsen(...).construct and apply_ufunc with numpy.fft, as an
  analyst would write it;
- plain NumPy, one process, one unit at a time;
- floors: memory bandwidth (a large copy) and FFT-only throughput (scipy.fft.rfft
  over the same float32 windows, contiguous, in cache-sized batches on all cores).

Usage: python benchmarks/features.py [--gib 2] [--repeats 3] [--no-peers]
Prints a Markdown table; throughput is input bytes / second.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import dask
import dask.array
import numpy as np
import scipy.fft
import xarray as xr
from bench_timing import timed  # benchmarks/ is the script folder: on sys.path

from suanli import datasets, pipelines
from suanli.datasets.generators.synthetic import DEFAULT_CHUNK_SAMPLES

WINDOW = 1024
SPLIT_CHUNK_SAMPLES = 1024 * WINDOW
PIPELINE = pipelines.load_pipeline("sensor-faults")
FEATURE_STEPS = pipelines.Pipeline("sensor-faults features",
                                   tuple(s for s in PIPELINE.steps if s.name != "split"))
BANDS = next(s for s in FEATURE_STEPS.steps if s.name == "window_features").params["bands"]


def panel_uri(gib: float) -> str:
    units = 64
    samples = int(gib * 2**30 / (units * 3 * 4))
    return f"synthetic://telemetry?units={units}&minutes={samples / 1024 / 60:.4f}&seed=0"


def make_panel(gib: float) -> xr.Dataset:
    with dask.config.set(scheduler="threads"):
        return datasets.open(panel_uri(gib)).load().chunk(
            {"unit": 1, "time": DEFAULT_CHUNK_SAMPLES})


def suanli_on_local_cluster(gib: float, repeats: int) -> float:
    """The deployment `suanli run` uses: a local cluster of worker processes, the data
    generated and held on the workers (not timed), then the same steps."""
    from distributed import wait

    from suanli import cluster

    with cluster.start("local", dashboard_address=None):
        held = datasets.open(panel_uri(gib)).persist()
        wait(held.signal.data)
        # Not timed: each worker process loads (or first compiles) the CPU kernels.
        suanli_features(held.isel(unit=slice(0, 2)))
        return timed(lambda: suanli_features(held), repeats)


def suanli_features(ds: xr.Dataset) -> None:
    out = FEATURE_STEPS.transform(ds)  # as `suanli run` does: steps fused where they can be
    dask.compute(out.band_power.data, out.window_stats.data)


def suanli_steps_one_by_one(ds: xr.Dataset) -> None:
    """The same steps without fusion (:mod:`suanli.pipelines.steps.fusion`): each its own tasks."""
    out = ds
    for call in FEATURE_STEPS.steps:
        out = call.apply(out)
    dask.compute(out.band_power.data, out.window_stats.data)


def _hand_band_power(x: np.ndarray) -> np.ndarray:
    freqs = np.fft.rfftfreq(WINDOW, 1 / 1024)
    spectrum = np.abs(np.fft.rfft((x - x.mean(-1, keepdims=True)) * np.hanning(WINDOW),
                                  axis=-1)) ** 2
    return np.stack([spectrum[..., (freqs >= lo) & (freqs < hi)].sum(-1) for lo, hi in BANDS],
                    axis=-1)


def xarray_by_hand(ds: xr.Dataset) -> None:
    signal = ds.signal
    signal = signal.fillna(signal.mean("time"))
    z = (signal - signal.mean("time")) / signal.std("time")
    w = z.coarsen(time=WINDOW, boundary="trim").construct(time=("window", "offset"))
    bp = xr.apply_ufunc(_hand_band_power, w, input_core_dims=[["offset"]],
                        output_core_dims=[["band"]], dask="parallelized",
                        output_dtypes=[np.float64],
                        dask_gufunc_kwargs={"output_sizes": {"band": len(BANDS)}})
    mean = w.mean("offset")
    std = w.std("offset")
    rms = np.sqrt((w**2).mean("offset"))
    skew = ((w - mean) ** 3).mean("offset") / std**3
    kurt = ((w - mean) ** 4).mean("offset") / std**4 - 3
    ptp = w.max("offset") - w.min("offset")
    crest = abs(w).max("offset") / rms
    dask.compute(bp, mean, std, rms, skew, kurt, ptp, crest)


def numpy_one_process(values: np.ndarray) -> None:
    for unit in range(values.shape[0]):
        x = values[unit].T  # (channel, time)
        missing = np.isnan(x)
        if missing.any():
            idx = np.arange(x.shape[1])
            x = x.copy()
            for c in range(x.shape[0]):
                m = missing[c]
                x[c, m] = np.interp(idx[m], idx[~m], x[c, ~m])
        z = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
        n = z.shape[1] // WINDOW
        w = z[:, : n * WINDOW].reshape(z.shape[0], n, WINDOW)
        _hand_band_power(w)
        mean = w.mean(-1, keepdims=True)
        d = w - mean
        m2 = (d**2).mean(-1)
        _ = ((d**3).mean(-1) / m2**1.5, (d**4).mean(-1) / m2**2 - 3, np.ptp(w, -1),
             np.abs(w).max(-1) / np.sqrt((w**2).mean(-1)))


def memory_floor(values: np.ndarray) -> float:
    target = np.empty_like(values)
    return timed(lambda: np.copyto(target, values), 3)


def fft_floor(values: np.ndarray, repeats: int) -> float:
    """rfft of every window, contiguous, in 1 MiB batches spread over one thread per core:
    the best FFT throughput we found here (one whole-array call with workers=cores
    was slower and far noisier)."""
    windows = np.ascontiguousarray(values[:, : values.shape[1] // WINDOW * WINDOW]
                                   .transpose(0, 2, 1)).reshape(-1, WINDOW)
    cores = os.cpu_count() or 1
    batches = [windows[i:i + 256] for i in range(0, len(windows), 256)]
    shares = [batches[k::cores] for k in range(cores)]

    def transform(share: list[np.ndarray]) -> None:
        for batch in share:
            scipy.fft.rfft(batch, axis=-1)

    with ThreadPoolExecutor(cores) as pool:
        return timed(lambda: list(pool.map(transform, shares)), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true",
                        help="skip the (slow) peers: for quick checks, not for RESULTS.md")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    began = time.perf_counter()
    ds = make_panel(args.gib)
    values = ds.signal.values
    nbytes = values.nbytes
    print(f"data: {nbytes / 2**30:.2f} GiB float32, {ds.sizes['unit']} units x "
          f"{ds.sizes['time']} samples x 3 channels, made in {time.perf_counter() - began:.0f} s")
    results: dict[str, float] = {}
    with dask.config.set(scheduler="threads", num_workers=cores):
        results["suanli (steps on Dask)"] = timed(lambda: suanli_features(ds), args.repeats)
        results["suanli, steps one by one (no fusion)"] = timed(
            lambda: suanli_steps_one_by_one(ds), args.repeats)
        # Long series: each unit over 3 chunks that end on window bounds (made from
        # the array in memory, so no rechunking is timed).
        split = ds.assign(signal=ds.signal.copy(
            data=dask.array.from_array(values, chunks=(1, SPLIT_CHUNK_SAMPLES, -1))))
        results["suanli, each series over 3 chunks"] = timed(lambda: suanli_features(split),
                                                             args.repeats)
        results["suanli, over 3 chunks, one by one (no fusion)"] = timed(
            lambda: suanli_steps_one_by_one(split), args.repeats)
        if not args.no_peers:
            results["xarray+Dask by hand"] = timed(lambda: xarray_by_hand(ds), 1)
    if not args.no_peers:
        results["NumPy, one process"] = timed(lambda: numpy_one_process(values), 1)
    results["suanli on a local cluster (processes)"] = suanli_on_local_cluster(args.gib,
                                                                               args.repeats)
    results["floor: FFT only (scipy.fft, all cores)"] = fft_floor(values, max(args.repeats, 3))
    results["floor: memory copy"] = memory_floor(values)
    ours = results["suanli (steps on Dask)"]
    print(f"\nmachine: {platform.processor() or platform.machine()}, {cores} cores; "
          f"dask threaded scheduler with {cores} threads unless said; median of "
          f"{args.repeats} for suanli and the floors, 1 run for the peers\n")
    print("| method | seconds | GB/s | suanli speed-up (x) |")
    print("|---|---:|---:|---:|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {nbytes / seconds / 1e9:.2f} | "
              f"{seconds / ours:.2f} |")
    fft = results["floor: FFT only (scipy.fft, all cores)"]
    local = results["suanli on a local cluster (processes)"]
    print(f"\nsuanli reaches {fft / ours:.2f} of the FFT-only floor ({fft / local:.2f} on the "
          f"local cluster)", end="")
    if args.no_peers:
        print(".")
    else:
        print(f" and is {results['xarray+Dask by hand'] / ours:.1f}x the hand-written "
              f"xarray+Dask peer.")


if __name__ == "__main__":
    main()
