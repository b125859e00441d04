"""The ssh kind against a real sshd on loopback: scheduler and workers on separate hosts."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import dask.config
import psutil
import pytest
from click.testing import CliRunner

from suanli import cluster, pipelines
from suanli.cluster import ClusterError, ClusterSpecError
from suanli.pipelines.cli import main

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

DATA = "synthetic://telemetry?units=40&minutes=2&seed=1"
FAST = {"train__epochs": 60}


def _spec(sshd: Any, **changes: object) -> cluster.ClusterSpec:
    fields: dict[str, object] = {
        "kind": "ssh", "address": "127.0.0.1",
        "hosts": ("127.0.0.2", {"address": "127.0.0.3", "workers": 2}),
        "threads_per_worker": 1, "memory_limit": "2GiB",
        "dashboard_address": "127.0.0.1:0", "startup_timeout": "60s",
        "ssh": sshd.ssh_options(),
    }
    fields.update(changes)
    return cluster.plan(cluster.ClusterSpec(**fields))  # type: ignore[arg-type]


def test_ssh_cluster_has_per_host_workers_and_matches_a_local_run(
        sshd: Any, local_cluster: cluster.Cluster, tmp_path: Path) -> None:
    local = pipelines.run("sensor-faults", DATA, cluster=local_cluster,
                          output=tmp_path / "local", **FAST)
    with cluster.start(_spec(sshd, environment={"SUANLI_SITE": "lab"},
                             config={"distributed.worker.memory.spill": 0.55})) as remote:
        assert remote.scheduler_address.startswith("tcp://127.0.0.1:")
        workers = remote.client.scheduler_info(n_workers=-1)["workers"]
        hosts = sorted(w["host"] for w in workers.values())
        assert hosts == ["127.0.0.2", "127.0.0.3", "127.0.0.3"]
        # Everything sshd started listens on its own host's loopback address only.
        pids = _spec_processes()
        assert pids, "no remote dask processes found"
        listening = {c.laddr.ip for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in pids}
        assert listening == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}, listening
        assert remote.client.submit(lambda x: x + 1, 41).result() == 42
        # The profile's environment and Dask config reach the remote workers.
        seen = remote.client.run(lambda: (os.environ.get("SUANLI_SITE"),
                                          dask.config.get("distributed.worker.memory.spill")))
        assert set(seen.values()) == {("lab", 0.55)}, seen
    assert not _wait_until_gone(20), "remote processes outlived the cluster"
    # What a user types: the same run, switched to an ssh profile.
    profile = {k: v for k, v in _spec(sshd).to_dict().items() if v is not None}
    with dask.config.set({"suanli.cluster.profiles.lab": profile}):
        ran = CliRunner().invoke(main, ["run", "sensor-faults", "--dataset", DATA,
                                        "--cluster", "lab", "--output", str(tmp_path / "ssh"),
                                        "--set", "train.epochs=60"])
    assert ran.exit_code == 0, ran.output
    over_ssh = json.loads((tmp_path / "ssh" / "metrics.json").read_text())
    manifest = json.loads((tmp_path / "ssh" / "manifest.json").read_text())
    assert manifest["cluster"]["kind"] == "ssh" and manifest["cluster"]["workers_started"] == 3
    assert over_ssh["accuracy"] == pytest.approx(local.metrics["accuracy"], abs=1e-9)
    assert over_ssh["macro_f1"] == pytest.approx(local.metrics["macro_f1"], abs=1e-9)
    assert over_ssh["confusion_matrix"] == local.metrics["confusion_matrix"]
    assert not _wait_until_gone(20), "remote processes outlived the run"


def _spec_processes() -> set[int]:
    """The processes sshd started for the cluster (distributed's dask_spec), and children."""
    found = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        if "distributed.cli.dask_spec" in " ".join(process.info["cmdline"] or []):
            found.add(process.pid)
            found |= {child.pid for child in process.children(recursive=True)}
    return found


def _wait_until_gone(seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := _spec_processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_unknown_host_key_is_refused_unless_checking_is_turned_off(sshd: Any) -> None:
    began = time.monotonic()
    with pytest.raises(ClusterError, match=r"not trusted|[Hh]ost key"):
        cluster.start(_spec(sshd, address=sshd.unknown_host, hosts=(sshd.unknown_host,)))
    assert time.monotonic() - began < 20
    relaxed = _spec(sshd, address=sshd.unknown_host, hosts=(sshd.unknown_host,),
                    ssh=sshd.ssh_options(check_host_keys=False))
    assert "NOT checked" in " ".join(cluster.launch_plan(relaxed).notes)
    with cluster.start(relaxed) as started:
        assert started.worker_count == 1


def test_missing_key_file_is_named(sshd: Any, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_key"
    with pytest.raises(ClusterSpecError, match=r"ssh\.client_keys") as caught:
        cluster.start(_spec(sshd, ssh=sshd.ssh_options(client_keys=[str(missing)])))
    assert str(missing) in str(caught.value)


def test_key_the_server_does_not_accept_is_refused(sshd: Any, tmp_path: Path) -> None:
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    with pytest.raises(ClusterError, match=r"[Pp]ermission denied|[Aa]uth"):
        cluster.start(_spec(sshd, ssh=sshd.ssh_options(client_keys=[str(other)])))


def test_unreachable_port_fails_within_seconds(sshd: Any) -> None:
    began = time.monotonic()
    with pytest.raises(ClusterError, match="could not start the ssh cluster") as caught:
        cluster.start(_spec(sshd, ssh=sshd.ssh_options(port=sshd.free_port())))
    assert time.monotonic() - began < 15
    assert "refused" in str(caught.value).lower() or "connect" in str(caught.value).lower()


def test_remote_error_is_surfaced_not_hung(sshd: Any) -> None:
    began = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        cluster.start(_spec(sshd, remote_python="/nonexistent/python3",
                            startup_timeout="20s"))
    assert time.monotonic() - began < 30
    assert "/nonexistent/python3" in str(caught.value), str(caught.value)
    assert not _wait_until_gone(10), "a failed start left processes behind"


def test_hung_remote_process_times_out_and_is_stopped(sshd: Any, tmp_path: Path) -> None:
    hang = tmp_path / "hang.sh"
    # A sleep no other process on the machine has: the check below finds it by name.
    hang.write_text("#!/bin/sh\necho 'waiting for a licence server' >&2\nsleep 117.25\n")
    hang.chmod(0o755)
    began = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        cluster.start(_spec(sshd, remote_python=str(hang), startup_timeout="3s"))
    assert time.monotonic() - began < 15
    message = str(caught.value)
    assert "did not report an address within 3 s" in message
    assert "waiting for a licence server" in message
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _sleepers(hang):
        time.sleep(0.2)
    left = [" ".join(psutil.Process(p).cmdline())[:200] for p in _sleepers(hang)]
    assert not left, f"the hung remote process was left running: {left}"


def _sleepers(script: Path) -> list[int]:
    return [p.pid for p in psutil.process_iter(["pid", "cmdline"])
            if (p.info["cmdline"] or [])[:2] == ["sleep", "117.25"]
            or str(script) in " ".join(p.info["cmdline"] or [])]


def test_gpu_hosts_get_dask_cuda_workers_in_the_plan(sshd: Any) -> None:
    spec = _spec(sshd, hosts=("127.0.0.2", {"address": "127.0.0.3", "gpus": 2}),
                 spill={"device_memory_limit": "0.8"})
    workers = cluster.launch_plan(spec).arguments["workers"]
    assert [w["worker_class"] for w in workers] == ["distributed.Nanny", "dask_cuda.CUDAWorker"]
    gpu = workers[1]["kwargs"]
    assert gpu["device_memory_limit"] == "0.8" and "n_workers" not in gpu
    assert gpu["dashboard_address"] == "127.0.0.3:0"  # not every interface
    assert workers[0]["remote_python"] is None or workers[0]["remote_python"] == sys.executable


def test_scaling_sweep_over_ssh_spreads_workers_over_hosts(sshd: Any, tmp_path: Path) -> None:
    """`suanli bench scaling` on the ssh kind: each point is a cluster of its size, its
    workers spread over the hosts, and 2 workers compute what 1 did."""
    result = pipelines.scaling("sensor-faults", "synthetic://telemetry?units=12&minutes=1",
                               _spec(sshd), [1, 2], repeats=1, warmup=False,
                               output=tmp_path / "scaling", overrides={"train.epochs": 5})
    points = result.record["modes"]["strong"]["points"]
    assert [p["hosts"] for p in points] == [{"127.0.0.2": 1},
                                            {"127.0.0.2": 1, "127.0.0.3": 1}]
    assert result.valid, [p["differs"] for p in points]
    assert points[1]["speedup"] == pytest.approx(
        points[0]["seconds"]["median"] / points[1]["seconds"]["median"])
    assert result.record["cluster"]["kind"] == "ssh"
    assert (tmp_path / "scaling" / "scaling.png").exists()
    assert not _wait_until_gone(20), "remote processes outlived the sweep"
