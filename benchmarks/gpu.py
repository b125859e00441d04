"""sensor-faults on a GPU against all the machine's CPU cores and the GPU's own floors.

One run, same data: the feature steps (fill_gaps, zscore, window,
window_features) and training on a LocalCUDACluster (one worker per GPU, CuPy
blocks) and on a CPU LocalCluster (all cores); the GPU floors measured in the
same run: device memory bandwidth (a large device-to-device copy) and cuFFT
throughput on the pipeline's window shape. Transfer (host to device) is timed
on its own.

    python benchmarks/gpu.py --gib 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _features_seconds(active: object, uri: str, device: str) -> tuple[float, float]:
    """(transfer + features seconds, bytes) for the pipeline's feature steps on ``device``."""
    from distributed import wait

    from suanli import datasets, pipelines
    from suanli.pipelines.device import dataset_to_device, dataset_to_host

    pipe = pipelines.load_pipeline("sensor-faults")
    ds = datasets.open(uri).persist()  # generated and held on the workers, not timed
    wait(ds.signal.data)
    began = time.perf_counter()
    moved = dataset_to_device(ds, device)
    out = pipe.transform(moved)
    keep = [n for n, v in out.data_vars.items() if "time" not in v.dims and "offset" not in v.dims]
    small = dataset_to_host(out[keep]) if device == "gpu" else out[keep]
    small.compute()
    return time.perf_counter() - began, float(ds.signal.nbytes)


def _floors(gib: float) -> dict[str, float]:
    import cupy

    n = int(gib * 2**30 / 4)
    a = cupy.random.random(n, dtype=cupy.float32)
    b = cupy.empty_like(a)
    cupy.cuda.runtime.deviceSynchronize()
    began = time.perf_counter()
    for _ in range(5):
        cupy.copyto(b, a)
    cupy.cuda.runtime.deviceSynchronize()
    copy = 5 * 2 * a.nbytes / (time.perf_counter() - began)  # read + write
    windows = a[: (n // 1024) * 1024].reshape(-1, 1024)
    cupy.fft.rfft(windows[:1024], axis=1)
    cupy.cuda.runtime.deviceSynchronize()
    began = time.perf_counter()
    for _ in range(3):
        cupy.fft.rfft(windows, axis=1)
    cupy.cuda.runtime.deviceSynchronize()
    fft = 3 * windows.nbytes / (time.perf_counter() - began)
    host = cupy.asnumpy(a[: n // 4])
    began = time.perf_counter()
    cupy.asarray(host)
    cupy.cuda.runtime.deviceSynchronize()
    h2d = host.nbytes / (time.perf_counter() - began)
    return {"device copy (read+write)": copy, "cuFFT rfft, 1024-sample windows": fft,
            "host to device": h2d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=2.0)
    args = parser.parse_args()

    from suanli import cluster, pipelines

    units = 32
    seconds = args.gib * 2**30 / (units * 3 * 4 * 1024)
    uri = f"synthetic://telemetry?units={units}&duration={seconds:.0f}s&seed=0"
    rows = []
    with cluster.start("local", dashboard_address=None) as cpu:
        cpu_s, nbytes = _features_seconds(cpu, uri, "cpu")
        began = time.perf_counter()
        pipelines.run("sensor-faults", "synthetic://telemetry?units=40&minutes=10&seed=0",
                      cluster=cpu, output=Path(tempfile.mkdtemp()) / "cpu-run", device="cpu")
        cpu_run = time.perf_counter() - began
    with cluster.start("local-cuda", dashboard_address=None) as gpu:
        gpu_s, _ = _features_seconds(gpu, uri, "gpu")
        began = time.perf_counter()
        result = pipelines.run("sensor-faults", "synthetic://telemetry?units=40&minutes=10&seed=0",
                               cluster=gpu, output=Path(tempfile.mkdtemp()) / "gpu-run",
                               device="gpu")
        gpu_run = time.perf_counter() - began
        floors = gpu.client.submit(_floors, min(args.gib, 4.0)).result()
    rows.append(("features, CPU LocalCluster (all cores)", cpu_s, nbytes / cpu_s))
    rows.append(("features, GPU (transfer included)", gpu_s, nbytes / gpu_s))
    for name, rate in floors.items():
        rows.append((f"floor: {name}", nbytes / rate, rate))
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores; {nbytes / 2**30:.2f} GiB\n")
    print("| step | seconds | GB/s |")
    print("|---|---:|---:|")
    for name, seconds, rate in rows:
        print(f"| {name} | {seconds:.3f} | {rate / 1e9:.2f} |")
    print(f"\nGPU over CPU, features: {cpu_s / gpu_s:.1f}x; GPU features vs cuFFT floor: "
          f"{(nbytes / gpu_s) / floors['cuFFT rfft, 1024-sample windows']:.2f}")
    print(f"whole sensor-faults run: CPU {cpu_run:.1f} s, GPU {gpu_run:.1f} s "
          f"(timings {result.manifest['timings']}); GPU accuracy {result.metrics['accuracy']:.3f}")


if __name__ == "__main__":
    main()
