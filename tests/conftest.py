"""Shared fixtures: one small local cluster per session, generated panels, tmp stores,
moto's S3 server on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.config
import pytest
import xarray as xr

from suanli import cluster, datasets

SMALL_TELEMETRY = "synthetic://telemetry?units=10&minutes=2&seed=3"


@pytest.fixture(scope="session", autouse=True)
def _no_processes_left() -> Iterator[None]:
    """RELIABILITY R20: when every test and fixture has finished (this fixture is set
    up first, so torn down last), no process the tests started is still running."""
    import time

    import psutil

    def ours() -> dict[int, str]:
        found = {}
        for process in psutil.Process().children(recursive=True):
            try:
                command = " ".join(process.cmdline())
                if process.status() != psutil.STATUS_ZOMBIE and \
                        "resource_tracker" not in command:  # lives as long as pytest
                    found[process.pid] = command
            except psutil.NoSuchProcess:
                continue
        return found

    before = set(ours())
    yield
    deadline = time.monotonic() + 20  # closing nannies and sshd take a moment to exit
    while (left := {pid: c for pid, c in ours().items() if pid not in before}) and \
            time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"processes the tests started are still running: {left}"


@pytest.fixture(scope="session", autouse=True)
def _quiet_dask_config(_no_processes_left: None, tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[None]:
    # Port 0: tests never fight over 8787 with each other or a user's cluster;
    # records of started clusters go to a temporary folder, not the user's.
    state = tmp_path_factory.mktemp("cluster-state")
    with dask.config.set({"suanli.cluster.state-directory": str(state),
                          "suanli.cluster.profiles.test": {
            "kind": "local", "workers": 2, "threads_per_worker": 1,
            "dashboard_address": "127.0.0.1:0", "memory_limit": "2GiB"}}):
        yield


@pytest.fixture(scope="session")
def local_cluster(_quiet_dask_config: None) -> Iterator[cluster.Cluster]:
    with cluster.start("test") as started:
        yield started


@pytest.fixture
def small_panel() -> xr.Dataset:
    return datasets.open(SMALL_TELEMETRY)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """moto's S3 server (the one s3fs tests against), on 127.0.0.1 only."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}",
                                 "region_name": "us-east-1"}}
    try:
        import boto3
        import s3fs

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                     aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket="suanli-test")
        fs = s3fs.S3FileSystem(**options)
        yield {"fs": fs, "options": options}
    finally:
        server.stop()


@dataclass
class PlainScheduler:
    """A ``dask scheduler`` and ``dask worker`` started as processes, as a team runs them."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: subprocess.Popen[bytes]


@pytest.fixture
def plain_scheduler(tmp_path: Path) -> Iterator[Callable[[int], PlainScheduler]]:
    """Starts a plain-tcp scheduler on 127.0.0.1 with N worker processes (the R7 tests
    kill it); everything is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(workers: int) -> PlainScheduler:
        scheduler_file = tmp_path / f"scheduler-{len(started)}.json"
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(scheduler)
        running = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             str(scheduler_file), "--host", "127.0.0.1", "--nworkers", str(workers),
             "--nthreads", "1", "--dashboard-address", "127.0.0.1:0", "--death-timeout", "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(running)
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        return PlainScheduler(address, scheduler, running)

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=10)
