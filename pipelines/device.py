"""Where a run computes: ``device = auto | cpu | gpu``.

``auto`` uses GPUs when every worker of the cluster has one and CuPy; ``gpu``
requires it and says what is missing otherwise. On a GPU run the signal's
blocks become CuPy arrays as soon as they are read or generated, stay on the
device through preprocessing and features, and only the (small) features come
back to the host to be written; training moves its feature blocks back onto
the GPU. Nothing here imports CuPy on the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DeviceError

if TYPE_CHECKING:
    import dask.array as da
    import xarray as xr
    from distributed import Client

DEVICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class WorkerDevice:
    """What one worker can compute on."""

    gpus: int
    cupy: str | None  # CuPy's version, or None when it cannot be imported
    problem: str | None = None  # why CuPy could not be imported


def probe_worker() -> WorkerDevice:
    """Run on a worker: its visible GPUs and whether CuPy works there."""
    from suanli.cluster.gpus import visible_gpu_count

    gpus = visible_gpu_count()
    if gpus == 0:
        return WorkerDevice(0, None)
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()  # fails on a driver/CUDA mismatch
        return WorkerDevice(gpus, str(cupy.__version__))
    except ImportError as error:
        return WorkerDevice(gpus, None, f"CuPy is not installed ({error})")
    except Exception as error:  # CUDARuntimeError and kin
        return WorkerDevice(gpus, None, f"CuPy cannot use the GPU ({error}); check that "
                                        "the cupy-cudaXX package matches the driver's CUDA")


def worker_devices(client: Client) -> dict[str, WorkerDevice]:
    """What each worker has; a worker that goes away while asked is left out."""
    found = {}
    for address, answer in client.run(probe_worker, on_error="return").items():
        if isinstance(answer, OSError):  # the connection closed: the worker is gone
            continue
        if isinstance(answer, BaseException):
            raise answer
        found[address] = answer
    return found


def resolve_device(requested: str, workers: dict[str, WorkerDevice]) -> str:
    """``cpu`` or ``gpu`` for a run, from the request and what the workers have."""
    if requested not in DEVICES:
        raise DeviceError(f"device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "cpu":
        return "cpu"
    ready = {a: w for a, w in workers.items() if w.gpus and w.cupy}
    if requested == "auto":
        return "gpu" if workers and len(ready) == len(workers) else "cpu"
    if not workers:
        raise DeviceError("device=gpu: the cluster has no workers")
    without = [a for a, w in workers.items() if not w.gpus]
    if without:
        raise DeviceError(
            f"device=gpu, but {len(without)} of {len(workers)} workers see no GPU "
            f"(e.g. {without[0]}); start a GPU cluster (kind local-cuda, auto, or ssh hosts "
            "with gpus) or run with device=cpu")
    broken = {a: w.problem for a, w in workers.items() if not w.cupy}
    if broken:
        address, problem = next(iter(broken.items()))
        raise DeviceError(f"device=gpu, but on worker {address}: {problem}; install "
                          "suanli[gpu] (CuPy and dask-cuda for the machine's CUDA) there")
    return "gpu"


def _to_gpu(block: np.ndarray) -> Any:
    import cupy

    return cupy.asarray(block)


def _to_host(block: Any) -> np.ndarray:
    return block.get() if hasattr(block, "get") else np.asarray(block)


def array_to_device(array: da.Array, device: str) -> da.Array:
    """``array``'s blocks on ``device`` (CuPy on gpu), moved on the workers."""
    if device != "gpu":
        return array
    import dask.array as da

    moved: da.Array = da.map_blocks(_to_gpu, array, dtype=array.dtype, meta=_gpu_meta(array))
    return moved


def _gpu_meta(array: da.Array) -> Any:
    try:
        import cupy

        return cupy.empty((0,) * array.ndim, dtype=array.dtype)
    except ImportError:  # a CPU client driving GPU workers
        return np.empty((0,) * array.ndim, dtype=array.dtype)


def dataset_to_device(ds: xr.Dataset, device: str, variables: tuple[str, ...] = ("signal",)
                      ) -> xr.Dataset:
    """``ds`` with ``variables`` moved to ``device``, as early as the graph allows."""
    if device != "gpu":
        return ds
    return ds.assign({name: ds[name].copy(data=array_to_device(ds[name].data, device))
                      for name in variables if name in ds and hasattr(ds[name].data, "map_blocks")})


def dataset_to_host(ds: xr.Dataset) -> xr.Dataset:
    """Every dask-backed variable's blocks back as NumPy (a no-op on NumPy blocks)."""
    return ds.assign({name: var.copy(data=var.data.map_blocks(
        _to_host, dtype=var.dtype, meta=np.empty((0,) * var.ndim, dtype=var.dtype)))
        for name, var in ds.data_vars.items() if hasattr(var.data, "map_blocks")})
