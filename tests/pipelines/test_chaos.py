"""RELIABILITY R3: runs on a cluster whose workers are killed at random, or go away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psutil
import pytest
import xarray as xr

from suanli import cluster, datasets, pipelines

DATASET = "synthetic://telemetry?units=24&minutes=4&seed=6"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_five_runs_under_random_worker_kills_complete_and_are_identical(tmp_path: Path
                                                                        ) -> None:
    """distributed's KillWorker chaos plugin segfaults each worker after a random,
    exponentially distributed life (mean 5 s); nannies restart them, the plugin comes
    back with each. Five runs complete, none hangs, and each gives the clean run's
    features, metrics and model, bit for bit."""
    import time

    from distributed.chaos import KillWorker
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Departures(SchedulerPlugin):
        def __init__(self) -> None:
            self.count = 0

        def remove_worker(self, scheduler, worker, **kwargs):  # type: ignore[no-untyped-def]
            self.count += 1

    dataset = "synthetic://telemetry?units=40&minutes=3&seed=4"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    departures = Departures()
    with cluster.start("local", workers=3, threads_per_worker=1,
                       dashboard_address=None) as c:
        clean = pipelines.run("sensor-faults", dataset, cluster=c, output=tmp_path / "clean",
                              train__epochs=20)
        c.dask_cluster.scheduler.add_plugin(departures)  # in-process scheduler
        c.client.register_plugin(KillWorker(delay="5s", mode="segfault"), name="chaos")
        runs = []
        for number in range(5):
            began = time.monotonic()
            runs.append(pipelines.run("sensor-faults", dataset, cluster=c,
                                      output=tmp_path / f"chaos-{number}", train__epochs=20))
            assert time.monotonic() - began < 90, f"run {number} took too long"
        c.client.unregister_worker_plugin("chaos")
        killed = departures.count
    print(f"{killed} workers killed over 5 runs")
    assert killed >= 1, "no worker was killed: the runs were not tested"
    features = datasets.open(str(clean.outputs["features"])).load()
    model = np.load(clean.outputs["model"])
    for number, run in enumerate(runs):
        xr.testing.assert_identical(datasets.open(str(run.outputs["features"])).load(),
                                    features)
        for key in ("accuracy", "macro_f1", "confusion_matrix"):
            assert run.metrics[key] == clean.metrics[key], (number, key)
        again = np.load(run.outputs["model"])
        assert sorted(again.files) == sorted(model.files)
        for name in model.files:
            np.testing.assert_array_equal(again[name], model[name], err_msg=f"run {number}")
    # multiprocessing's resource tracker lives as long as this process: not a leak
    left = {p.pid: " ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())}
    assert not left, f"processes left behind: {left}"


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
