"""The ``local-cuda`` kind: dask-cuda's LocalCUDACluster, one worker per GPU, on loopback.

The spill policy, in plain words (``spill`` in the spec):

- ``device_memory_limit``: when the data a worker holds on its GPU passes this
  (a fraction such as 0.8 of the device, or a size such as "30GB"), the worker
  moves the least recently used pieces to host memory, and back when a task
  needs them. ``0`` or null turns spilling off: the GPU may fill up and tasks
  then fail with out-of-memory errors. Default: dask-cuda's, 80% of the device.
- ``rmm_pool_size``: reserve this much device memory up front as one pool
  (faster allocations, but other processes cannot use it).
- ``enable_cudf_spill``: let cuDF spill its own buffers (only with cuDF).
- ``log_spilling``: log every spill, to find out why a step is slow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backends import import_backend, scheduler_options, worker_settings
from .errors import ClusterError, ClusterSpecError
from .gpus import visible_gpu_count
from .kinds import Launch

if TYPE_CHECKING:
    from distributed import LocalCluster

    from .spec import ClusterSpec


def local_cuda_arguments(spec: ClusterSpec) -> dict[str, Any]:
    """LocalCUDACluster's keyword arguments for ``spec``."""
    kwargs: dict[str, Any] = {
        "threads_per_worker": spec.threads_per_worker or 1,
        "memory_limit": spec.memory_limit,
        "host": spec.host,
        "dashboard_address": spec.dashboard_address,
    }
    if spec.gpus is not None:
        # Use the first ``gpus`` devices, one worker each.
        kwargs["CUDA_VISIBLE_DEVICES"] = list(range(spec.gpus))
        kwargs["n_workers"] = spec.gpus
    kwargs.update(spec.spill)
    if scheduler_options(spec):
        kwargs["scheduler_kwargs"] = scheduler_options(spec)
    return kwargs


def validate(spec: ClusterSpec) -> None:
    if spec.gpus == 0:
        raise ClusterSpecError("gpus", 0, "at least 1 for local-cuda (use kind local for CPU)")


def worker_plugins(spec: ClusterSpec) -> list[Any]:
    """Each worker's CuPy allocates from one memory pool (RMM's when installed)."""
    from .plugins import CupyMemoryPool

    return [CupyMemoryPool()]


def launch(spec: ClusterSpec) -> Launch:
    gpus = "every visible GPU" if spec.gpus is None else f"the first {spec.gpus} GPU(s)"
    limit = spec.spill.get("device_memory_limit", "dask-cuda's default (80% of each device)")
    return Launch("dask_cuda.LocalCUDACluster", local_cuda_arguments(spec), notes=(
        f"one worker per GPU on {gpus}, listening on {spec.host} only",
        f"each worker spills device memory to host memory beyond {limit}",
    ))


def require_gpu(kind: str) -> int:
    """The number of visible GPUs, or a clear error where there is none."""
    count = visible_gpu_count()
    if count == 0:
        raise ClusterError(
            f"the {kind!r} cluster kind needs an NVIDIA GPU, and none is visible here "
            "(no driver found, or CUDA_VISIBLE_DEVICES is empty); use kind 'local' for "
            "CPU workers, or 'auto' to pick whichever this machine has"
        )
    return count


def start(spec: ClusterSpec) -> LocalCluster:
    """Start a LocalCUDACluster for ``spec``."""
    count = require_gpu("local-cuda")
    if spec.gpus is not None and spec.gpus > count:
        raise ClusterError(f"the spec asks for gpus={spec.gpus}, but only {count} "
                           "GPU(s) are visible here")
    dask_cuda = import_backend("dask_cuda", "local-cuda")
    with worker_settings(spec):
        cluster: LocalCluster = dask_cuda.LocalCUDACluster(**local_cuda_arguments(spec))
    return cluster
