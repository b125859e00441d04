"""RELIABILITY R3 (none hangs): runs on a cluster whose workers go away."""

from __future__ import annotations

from pathlib import Path

import pytest

from suanli import cluster, pipelines

DATASET = "synthetic://telemetry?units=24&minutes=4&seed=6"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_run_whose_workers_all_exit_fails_instead_of_waiting(tmp_path: Path) -> None:
    """Workers that exit cleanly (the chaos plugin's sys.exit mode) are not replaced by
    their nannies. The local profile's no-workers timeout fails the run, saying so,
    instead of leaving it waiting for workers that never come."""
    import time

    from distributed.chaos import KillWorker

    from suanli.pipelines import PipelineError

    with cluster.start("local", workers=2, threads_per_worker=1, dashboard_address=None,
                       config={"distributed.scheduler.no-workers-timeout": "5s"}) as c:
        c.client.register_plugin(KillWorker(delay="0.5s", mode="sys.exit"), name="chaos")
        began = time.monotonic()
        with pytest.raises(PipelineError, match=r"had no workers while the run waited .* "
                                                r"Nothing was written; restart the cluster"):
            pipelines.run("sensor-faults", DATASET, cluster=c, output=tmp_path / "run",
                          train__epochs=3)
        assert time.monotonic() - began < 60
        assert not (tmp_path / "run").exists()


def test_the_local_profile_fails_runs_left_without_workers() -> None:
    from suanli.cluster import plan

    assert plan("local").config["distributed.scheduler.no-workers-timeout"] == "60s"
