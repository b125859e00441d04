"""The slurm kind against a real one-node SLURM on 127.0.0.1: jobs really submitted,
workers started by the batch system, the pipeline run through them."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import dask.config
import numpy as np
import psutil
import pytest
import xarray as xr
from click.testing import CliRunner

from suanli import cluster, pipelines
from suanli.cluster import ClusterError
from suanli.cluster.jobqueue import PLACEHOLDER_SCHEDULER
from suanli.pipelines.cli import main

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

DATA = "synthetic://telemetry?units=40&minutes=2&seed=1"
WORKER_MODULE = "distributed.cli.dask_worker"


def _profile(slurm: Any, **changes: Any) -> dict[str, Any]:
    """A profile for the test SLURM: one core and 2 GiB per worker job, the scheduler,
    workers and dashboard on 127.0.0.1."""
    options = {"queue": slurm.partition, "walltime": "00:30:00",
               "scheduler_options": {"host": "127.0.0.1"},
               "worker_extra_args": ["--host", "127.0.0.1", "--no-dashboard",
                                     "--dashboard-address", "127.0.0.1:0"],
               "log_directory": str(slurm.folder / "jobs"), **changes.pop("options", {})}
    return {"kind": "slurm", "workers": 2, "threads_per_worker": 1, "memory_limit": "2GiB",
            "dashboard_address": "127.0.0.1:0", "startup_timeout": "60s",
            "options": options, **changes}


def _spec(slurm: Any, **changes: Any) -> cluster.ClusterSpec:
    return cluster.plan(cluster.ClusterSpec(**_profile(slurm, **changes)))


def _worker_processes(address: str) -> list[int]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        command = " ".join(process.info["cmdline"] or ())
        if WORKER_MODULE in command and address in command:
            found.append(process.info["pid"])
    return found


def _wait(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return bool(condition())


def test_plan_is_the_job_script_slurm_runs_and_workers_join_from_jobs(slurm: Any) -> None:
    planned = cluster.launch_plan(_spec(slurm)).artefacts["job script"]
    with cluster.start(_spec(slurm)) as started:
        jobs = slurm.jobs()
        assert [(j["name"], j["state"]) for j in jobs] == [("dask-worker", "RUNNING")] * 2
        assert started.worker_count == 2
        submitted = [slurm.command("scontrol", "write", "batch_script", job["id"], "-")
                     for job in jobs]
        # The plan shows the first job's script exactly, but for the scheduler's address.
        assert planned.replace(PLACEHOLDER_SCHEDULER, started.scheduler_address) in submitted
        # The workers run inside the jobs: their processes descend from slurmstepd.
        pids = _worker_processes(started.scheduler_address)
        assert pids
        assert all(any("slurmstepd" in p.name() for p in psutil.Process(pid).parents())
                   for pid in pids)
        # Everything listens on loopback only: SLURM's daemons, scheduler, workers.
        ours = {*pids, *(c.pid for p in pids for c in psutil.Process(p).children(True)),
                *(p.pid for p in psutil.process_iter(["name"])
                  if p.info["name"] in ("slurmctld", "slurmd"))}
        listening = {c.laddr.ip for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in ours}
        assert listening == {"127.0.0.1"}, listening
        address = started.scheduler_address
    # Closing the cluster cancels its jobs and leaves no worker behind.
    assert _wait(lambda: not slurm.jobs(), 30), slurm.jobs()
    assert _wait(lambda: not _worker_processes(address), 30)


def test_pipeline_through_slurm_jobs_equals_the_local_run(
        slurm: Any, local_cluster: cluster.Cluster, tmp_path: Path) -> None:
    local = pipelines.run("sensor-faults", DATA, cluster=local_cluster,
                          output=tmp_path / "local", train__epochs=60)
    # What a user types: the same run with a slurm profile.
    with dask.config.set({"suanli.cluster.profiles.hpc-test": _profile(slurm)}):
        plan = CliRunner().invoke(main, ["cluster", "plan", "hpc-test"])
        assert plan.exit_code == 0 and "#SBATCH -p debug" in plan.output, plan.output
        ran = CliRunner().invoke(main, ["run", "sensor-faults", "--dataset", DATA,
                                        "--cluster", "hpc-test", "--output",
                                        str(tmp_path / "hpc"), "--set", "train.epochs=60"])
    assert ran.exit_code == 0, ran.output
    metrics = json.loads((tmp_path / "hpc" / "metrics.json").read_text())
    manifest = json.loads((tmp_path / "hpc" / "manifest.json").read_text())
    assert manifest["cluster"]["kind"] == "slurm" and manifest["cluster"]["workers_started"] == 2
    assert metrics["accuracy"] == pytest.approx(local.metrics["accuracy"], abs=1e-9)
    assert metrics["confusion_matrix"] == local.metrics["confusion_matrix"]
    here = xr.open_zarr(tmp_path / "hpc" / "features.zarr")
    there = xr.open_zarr(tmp_path / "local" / "features.zarr")
    for name in ("band_power", "window_stats"):
        np.testing.assert_array_equal(here[name].values, there[name].values)
    assert _wait(lambda: not slurm.jobs(), 30), slurm.jobs()


def test_scaling_submits_and_cancels_jobs(slurm: Any) -> None:
    with cluster.start(_spec(slurm, workers=1)) as started:
        assert len(slurm.jobs()) == 1
        started.scale(2)
        assert _wait(lambda: [j["state"] for j in slurm.jobs()] == ["RUNNING"] * 2, 30)
        started.client.wait_for_workers(2, timeout=30)
        started.scale(1)
        assert _wait(lambda: len(slurm.jobs()) == 1, 30), slurm.jobs()
        assert _wait(lambda: started.worker_count == 1, 30)
    assert _wait(lambda: not slurm.jobs(), 30), slurm.jobs()


@pytest.mark.parametrize(("changes", "quoted"), [
    ({"memory_limit": "100GiB"}, "Requested node configuration is not available"),
    ({"options": {"queue": "no-such-partition"}}, "invalid partition specified"),
], ids=["too-much-memory", "unknown-partition"])
def test_job_slurm_refuses_fails_within_seconds_quoting_slurm(
        slurm: Any, changes: dict[str, Any], quoted: str) -> None:
    began = time.monotonic()
    with pytest.raises(ClusterError, match="SLURM refuses the worker jobs") as caught:
        cluster.start(_spec(slurm, **changes))
    assert quoted in str(caught.value)
    assert time.monotonic() - began < 15
    assert not slurm.jobs()


def test_job_slurm_will_never_start_fails_naming_its_reason(slurm: Any) -> None:
    began = time.monotonic()
    with pytest.raises(ClusterError, match="pending with reason 'PartitionDown'"):
        cluster.start(_spec(slurm, workers=1, options={"queue": "maintenance"}))
    assert time.monotonic() - began < 20
    assert _wait(lambda: not slurm.jobs(), 30), slurm.jobs()


def test_job_whose_worker_cannot_start_is_reported_with_its_log(slurm: Any) -> None:
    began = time.monotonic()
    with pytest.raises(ClusterError, match=r"ended \(FAILED") as caught:
        cluster.start(_spec(slurm, workers=1, remote_python="/nonexistent/bin/python"))
    assert "/nonexistent/bin/python" in str(caught.value)  # the end of the job's log
    assert time.monotonic() - began < 30
    assert _wait(lambda: not slurm.jobs(), 30), slurm.jobs()


def test_run_survives_a_worker_job_ended_by_slurm_mid_run(
        slurm: Any, local_cluster: cluster.Cluster, tmp_path: Path) -> None:
    """A worker's job ended by SLURM during a run (``scancel``: the SIGTERM, then SIGKILL
    after KillWait, that a walltime expiry also sends): its tasks rerun on the other
    worker and the run gives the local run's results."""
    data = "synthetic://telemetry?units=40&minutes=4&seed=2"
    local = pipelines.run("sensor-faults", data, cluster=local_cluster,
                          output=tmp_path / "local", train__epochs=60)
    with cluster.start(_spec(slurm)) as started:
        victim = slurm.jobs()[0]["id"]
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = pipelines.run("sensor-faults", data, cluster=started,
                                                  output=tmp_path / "hpc", train__epochs=60)
            except BaseException as error:  # reported below
                outcome["error"] = error

        runner = threading.Thread(target=run)
        runner.start()
        assert _wait(lambda: any(started.client.processing().values()), 30)
        time.sleep(1.0)
        slurm.command("scancel", victim)
        runner.join(timeout=180)
        assert not runner.is_alive()
        assert "error" not in outcome, outcome.get("error")
        assert victim not in [j["id"] for j in slurm.jobs()]
        assert started.worker_count == 1
    result = outcome["result"]
    assert result.metrics["accuracy"] == pytest.approx(local.metrics["accuracy"], abs=1e-9)
    assert result.metrics["confusion_matrix"] == local.metrics["confusion_matrix"]
    assert _wait(lambda: not slurm.jobs(), 30), slurm.jobs()


def test_cluster_up_list_and_down_for_slurm(slurm: Any) -> None:
    """`suanli cluster up` with a slurm profile: the scheduler here in the background,
    workers as jobs named after the cluster; `list` shows the jobs, `down` cancels them."""
    runner = CliRunner()
    with dask.config.set({"suanli.cluster.profiles.hpc-up": _profile(slurm)}):
        started = runner.invoke(main, ["cluster", "up", "hpc-up", "--workers", "2"])
    assert started.exit_code == 0, started.output
    cluster_id = started.output.split()[1].rstrip(":")
    name = started.output.split("batch jobs named ")[1].split()[0]
    assert [(j["name"], j["state"]) for j in slurm.jobs()] == [(name, "RUNNING")] * 2
    address = started.output.split("scheduler ")[1].split(",")[0]
    try:
        listed = runner.invoke(main, ["cluster", "list"])
        assert cluster_id in listed.output and f"jobs ({name}):" in listed.output
        assert listed.output.count("running") == 2, listed.output
        # A user reaches it as a shared cluster and runs on its workers.
        with cluster.connect(address, insecure=True) as joined:
            assert joined.worker_count == 2
            assert joined.client.submit(lambda x: x + 1, 41).result() == 42
    finally:
        stopped = runner.invoke(main, ["cluster", "down", cluster_id])
    assert stopped.exit_code == 0, stopped.output
    assert _wait(lambda: not slurm.jobs(), 30), slurm.jobs()
    assert _wait(lambda: not _worker_processes(address), 30)
    assert cluster_id not in runner.invoke(main, ["cluster", "list"]).output
