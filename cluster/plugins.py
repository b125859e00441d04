"""Worker plugins suanli registers on GPU clusters."""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


class CupyMemoryPool(WorkerPlugin):
    """Give each GPU worker's CuPy one memory pool (RMM's when installed).

    Without a pool every CuPy allocation goes to the CUDA driver; with dask-cuda
    an RMM pool (``spill.rmm_pool_size``) may already exist, and CuPy should
    allocate from it rather than beside it.
    """

    name = "suanli-cupy-memory-pool"

    def __init__(self, limit_fraction: float | None = None) -> None:
        #: Cap CuPy's own pool at this fraction of the device (None: no cap).
        self.limit_fraction = limit_fraction

    def setup(self, worker: Any) -> None:
        import cupy

        try:
            from rmm.allocators.cupy import rmm_cupy_allocator

            cupy.cuda.set_allocator(rmm_cupy_allocator)
            worker.suanli_cupy_pool = "rmm"
        except ImportError:
            pool = cupy.cuda.MemoryPool()
            if self.limit_fraction is not None:
                pool.set_limit(fraction=self.limit_fraction)
            cupy.cuda.set_allocator(pool.malloc)
            worker.suanli_cupy_pool = "cupy"
