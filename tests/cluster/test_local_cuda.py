"""local-cuda and auto on a real GPU: run where one is visible (benchmarks/gpu_check.sh)."""

from __future__ import annotations

import pytest

from suanli import cluster
from suanli.cluster.gpus import visible_gpu_count

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(visible_gpu_count() == 0,
                                                  reason="no NVIDIA GPU visible")]


def test_local_cuda_cluster_has_one_worker_per_gpu_on_loopback() -> None:
    import psutil

    count = visible_gpu_count()
    with cluster.start("local-cuda", dashboard_address="127.0.0.1:0",
                       spill={"device_memory_limit": "0.8"}) as c:
        assert c.worker_count == count
        visible = c.client.run(lambda: __import__("os").environ["CUDA_VISIBLE_DEVICES"])
        assert len({v.split(",")[0] for v in visible.values()}) == count
        me = psutil.Process()
        pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
        listening = {s.laddr.ip for s in psutil.net_connections("inet")
                     if s.status == psutil.CONN_LISTEN and s.pid in pids}
        assert listening == {"127.0.0.1"}, listening


def test_auto_picks_local_cuda_and_runs_cupy_work() -> None:
    with cluster.start("auto", gpus=1, dashboard_address=None) as c:
        assert c.spec.kind == "local-cuda" and c.worker_count == 1

        def on_gpu() -> float:
            import cupy

            return float(cupy.arange(1_000_000, dtype=cupy.float64).sum().get())

        assert c.client.submit(on_gpu).result() == pytest.approx(499999500000.0)
