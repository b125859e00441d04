"""A shared TLS scheduler started by `suanli cluster up`, with real certificates."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.config
import psutil
import pytest
from click.testing import CliRunner

from suanli import cluster, pipelines
from suanli.cluster import ClusterError, ClusterSpecError
from suanli.cluster.certificates import make_certificates
from suanli.pipelines.cli import main

pytestmark = pytest.mark.slow

DATA = "synthetic://telemetry?units=40&minutes=2&seed=1"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    folder = tmp_path_factory.mktemp("tls")
    made = make_certificates(folder / "team", names=("scheduler", "alice"))
    stranger = make_certificates(folder / "other-ca", names=("mallory",))
    return {"scheduler": made["scheduler"].as_profile(), "alice": made["alice"].as_profile(),
            "mallory": stranger["mallory"].as_profile()}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def team(certificates: dict[str, dict[str, str]]) -> Iterator[str]:
    """`suanli cluster up team` with two workers; yields the scheduler address."""
    address = f"tls://127.0.0.1:{_free_port()}"
    profile = {"kind": "shared", "address": address, "tls": certificates["scheduler"],
               "workers": 2, "threads_per_worker": 1, "memory_limit": "2GiB",
               "dashboard_address": "127.0.0.1:0", "startup_timeout": "30s"}
    runner = CliRunner()
    with dask.config.set({"suanli.cluster.profiles.team": profile}):
        started = runner.invoke(main, ["cluster", "up", "team"])
        assert started.exit_code == 0, started.output
        cluster_id = re.search(r"started (\S+):", started.output).group(1)  # type: ignore[union-attr]
        try:
            yield address
        finally:
            stopped = runner.invoke(main, ["cluster", "down", cluster_id])
            assert stopped.exit_code == 0, stopped.output


def _shared(address: str, tls: dict[str, str] | None, **changes: object) -> cluster.ClusterSpec:
    return cluster.ClusterSpec(kind="shared", address=address, tls=tls,
                               startup_timeout="5s", **changes)  # type: ignore[arg-type]


def test_client_with_the_clusters_certificates_runs_a_pipeline(
        team: str, certificates: dict[str, dict[str, str]], local_cluster: cluster.Cluster,
        tmp_path: Path) -> None:
    with cluster.connect(team, tls=certificates["alice"]) as joined:
        assert joined.worker_count == 2
        assert joined.scheduler_address == team
    # What a user types: the same run, switched to a shared TLS profile.
    profile = {"kind": "shared", "address": team, "tls": certificates["alice"]}
    with dask.config.set({"suanli.cluster.profiles.team-alice": profile}):
        ran = CliRunner().invoke(main, ["run", "sensor-faults", "--dataset", DATA,
                                        "--cluster", "team-alice", "--output",
                                        str(tmp_path / "tls"), "--set", "train.epochs=60"])
    assert ran.exit_code == 0, ran.output
    over_tls = json.loads((tmp_path / "tls" / "metrics.json").read_text())
    local = pipelines.run("sensor-faults", DATA, cluster=local_cluster,
                          output=tmp_path / "local", train__epochs=60)
    assert over_tls["confusion_matrix"] == local.metrics["confusion_matrix"]
    assert over_tls["accuracy"] == pytest.approx(local.metrics["accuracy"], abs=1e-9)
    with cluster.connect(team, tls=certificates["alice"]) as joined:
        assert joined.worker_count == 2  # the run left the shared cluster running


def test_scheduler_and_workers_listen_on_loopback_only(team: str) -> None:
    port = int(team.rsplit(":", 1)[1])
    owners = {c.pid for c in psutil.net_connections("inet")
              if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert owners, "nothing listens on the scheduler's port"
    families = set()
    for pid in owners:
        process = psutil.Process(pid)
        families |= {pid} | {p.pid for p in process.children(recursive=True)}
    workers = [p for p in psutil.process_iter(["pid", "cmdline"])
               if "distributed.cli.dask_worker" in " ".join(p.info["cmdline"] or [])]
    for worker in workers:
        families |= {worker.pid} | {p.pid for p in worker.children(recursive=True)}
    addresses = {c.laddr.ip for c in psutil.net_connections("inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in families}
    assert addresses == {"127.0.0.1"}, addresses


def test_client_without_certificates_is_told_tls_is_required(team: str) -> None:
    with pytest.raises(ClusterSpecError, match="requires TLS"):
        cluster.connect(team)


def test_client_with_another_cas_certificate_is_refused(
        team: str, certificates: dict[str, dict[str, str]]) -> None:
    began = time.monotonic()
    with pytest.raises(ClusterError, match="requires TLS with certificates signed by its CA"):
        cluster.start(_shared(team, certificates["mallory"]))
    assert time.monotonic() - began < 20


def test_plain_tcp_is_refused(team: str) -> None:
    plain = team.replace("tls://", "tcp://")
    with pytest.raises(ClusterSpecError, match="requires TLS"):
        cluster.start(_shared(plain, None))
    # Even a profile that allows plain tcp cannot talk to a TLS-only scheduler.
    with pytest.raises(ClusterError, match="requires TLS"):
        cluster.start(_shared(plain, None, insecure=True))


def test_raw_distributed_client_without_a_certificate_is_refused_by_the_server(
        team: str, certificates: dict[str, dict[str, str]]) -> None:
    import asyncio
    import ssl

    from distributed.comm import connect

    # Trusts the cluster's CA but presents no certificate of its own: the
    # scheduler itself (not suanli's checks) turns it away.
    context = ssl.create_default_context(cafile=certificates["alice"]["ca_file"])
    context.check_hostname = False

    async def ask_identity() -> object:
        comm = await connect(team, timeout=5, ssl_context=context)
        await comm.write({"op": "identity"})
        return await comm.read()

    with pytest.raises((OSError, TimeoutError)):
        asyncio.run(ask_identity())


def test_cluster_list_and_down(certificates: dict[str, dict[str, str]]) -> None:
    runner = CliRunner()
    profile = {"kind": "shared", "address": f"tls://127.0.0.1:{_free_port()}",
               "tls": certificates["scheduler"], "workers": 1, "dashboard_address": None,
               "startup_timeout": "30s"}
    with dask.config.set({"suanli.cluster.profiles.scratch": profile}):
        started = runner.invoke(main, ["cluster", "up", "scratch", "--workers", "1"])
        assert started.exit_code == 0, started.output
        cluster_id = re.search(r"started (\S+):", started.output).group(1)  # type: ignore[union-attr]
        listed = runner.invoke(main, ["cluster", "list"])
        assert cluster_id in listed.output and profile["address"] in listed.output
        from suanli.cluster.registry import find

        record = find(cluster_id)
        assert record is not None and len(record.pids) == 2
        stopped = runner.invoke(main, ["cluster", "down", cluster_id])
        assert stopped.exit_code == 0, stopped.output
        assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
                   for pid in record.pids)
        assert cluster_id not in runner.invoke(main, ["cluster", "list"]).output
        unknown = runner.invoke(main, ["cluster", "down", "no-such-cluster"])
        assert unknown.exit_code == 2 and "no running cluster" in unknown.output


def test_scaling_sweep_on_the_shared_cluster_confines_each_point_to_k_workers(
        team: str, certificates: dict[str, dict[str, str]], tmp_path: Path) -> None:
    """A shared cluster is not resized or restarted: each point's tasks are restricted
    to K of its workers, and the sweep says when it has fewer than asked."""
    spec = cluster.ClusterSpec(kind="shared", address=team, tls=certificates["alice"])
    result = pipelines.scaling("sensor-faults", DATA, spec, [1, 2], repeats=1, warmup=False,
                               output=tmp_path / "scaling", overrides={"train.epochs": 30})
    points = result.record["modes"]["strong"]["points"]
    assert [(p["workers"], p["threads"], sum(p["hosts"].values())) for p in points] == [
        (1, 1, 1), (2, 2, 2)]
    assert not any(p["restarted_between_repeats"] for p in points)
    assert result.valid, [p["differs"] for p in points]
    # Every task of the one-worker point ran on one worker, of the two-worker on two.
    assert [p["workers_used"] for p in points] == [1, 2]
    with pytest.raises(ClusterError, match="has 2 workers"):
        pipelines.scaling("sensor-faults", DATA, spec, [1, 3], repeats=1, warmup=False,
                          output=tmp_path / "too-many")
    assert not (tmp_path / "too-many").exists()


def test_etl_backfill_on_the_shared_tls_cluster(
        team: str, certificates: dict[str, dict[str, str]], tmp_path: Path) -> None:
    """What a scheduled job runs: `suanli etl` against the team's TLS scheduler."""
    from suanli import datasets

    for seed, day in enumerate(("2024-03-01", "2024-03-02")):
        datasets.generate("telemetry", tmp_path / "raw" / f"{day}.zarr", units=8, minutes=1,
                          seed=seed, progress=False)
    root = tmp_path / "features"
    profile = {"kind": "shared", "address": team, "tls": certificates["alice"]}
    with dask.config.set({"suanli.cluster.profiles.team-etl": profile}):
        ran = CliRunner().invoke(main, [
            "etl", "sensor-faults", "--source", f"{tmp_path}/raw/{{date}}.zarr",
            "--output", str(root), "--since", "2024-03-01", "--until", "2024-03-02",
            "--cluster", "team-etl", "--log-format", "json", "--set", "train.epochs=5"])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.output.strip().splitlines()[-1])
    assert result["event"] == "result" and result["counts"] == {"ran": 2}
    assert pipelines.etl_status(str(root))["counts"] == {"done": 2}


def test_etl_reliability_on_the_shared_tls_cluster_with_an_s3_root(
        team: str, certificates: dict[str, dict[str, str]], s3: dict[str, Any],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduled user's faults, as they meet them: real `suanli etl` processes against
    the TLS scheduler from `suanli cluster up`, partitions on moto's S3.

    R14: two runs race, one runs and the other exits 3. R8: the runner SIGKILLed at a
    write and at fixed moments never leaves a partial partition, and the next run takes
    over the lease, clears the dead runner's staging and writes the clean bytes (R15).
    A worker killed by distributed's KillWorker mid-backfill: the partitions equal the
    clean ones. R7: the scheduler of a second `suanli cluster up` killed mid-backfill:
    the run stops saying to rerun, and the rerun completes."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import uuid

    import fsspec
    import yaml
    from distributed.chaos import KillWorker

    from suanli import datasets

    days = ("2024-03-01", "2024-03-02", "2024-03-03")
    for seed, day in enumerate(days):
        datasets.generate("telemetry", tmp_path / "raw" / f"{day}.zarr", units=8,
                          minutes=1, seed=seed, progress=False)
    source = f"{tmp_path}/raw/{{date}}.zarr"
    monkeypatch.setitem(fsspec.config.conf, "s3", s3["options"])
    fs = s3["fs"]
    profile = {"kind": "shared", "address": team, "tls": certificates["alice"]}
    config = tmp_path / "dask"
    config.mkdir()
    (config / "suanli.yaml").write_text(yaml.safe_dump({"suanli": {"cluster": {
        "profiles": {"team-etl": profile},
        "state_directory": str(tmp_path / "state")}}}))
    env = {**os.environ, "DASK_CONFIG": str(config), "FSSPEC_S3": json.dumps(s3["options"])}
    suanli = str(Path(sys.executable).parent / "suanli")

    def command(root: str, *extra: str) -> list[str]:
        return [suanli, "etl", "sensor-faults", "--source", source, "--output", root,
                "--since", days[0], "--until", days[-1], "--cluster", "team-etl",
                "--set", "train.epochs=5", *extra]

    def features(root: str) -> dict[str, dict[str, bytes]]:
        """Each partition's feature files (their bytes)."""
        fs.invalidate_cache()
        found: dict[str, dict[str, bytes]] = {}
        for day in days:
            store = f"{root.removeprefix('s3://')}/date={day}/features.zarr"
            found[day] = {p[len(store):]: fs.cat_file(p) for p in fs.find(store)}
        return found

    def staging(root: str) -> list[str]:
        fs.invalidate_cache()
        return [p for p in fs.find(root.removeprefix("s3://"), withdirs=True)
                if ".writing-" in p.rpartition("/")[2]]

    # R14: two real runs race for the root's lease.
    root = f"s3://suanli-test/shared-etl-{uuid.uuid4().hex[:8]}"
    racers = [subprocess.Popen(command(root), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((r.wait(timeout=300), r.communicate()) for r in racers)
    assert [code for code, _ in outcomes] == [0, 3], outcomes
    assert "another ETL run holds the lease" in outcomes[1][1][1]
    clean = features(root)
    assert all(clean[day] for day in days)

    # R8 and R15: `--force` runs SIGKILLed: once as a partition's write begins, then at
    # fixed moments; every partition stays whole and as it was.
    forced = command(root, "--force", "--parallel", "1", "--takeover-after", "2s",
                     "--wait", "30s")
    cut_short = []
    for moment in ("at a write", 3.0):
        runner = subprocess.Popen(forced, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        if isinstance(moment, float):
            time.sleep(moment)
        else:
            deadline = time.monotonic() + 60
            while not staging(root) and time.monotonic() < deadline:
                time.sleep(0.05)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
        cut_short += staging(root)
        for day in days:
            assert datasets.verify(f"{root}/date={day}").ok, (moment, day)
        assert features(root) == clean, moment
    assert cut_short, "no kill fell during a write: the test tested nothing"
    rerun = subprocess.run(forced, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "3 ran" in rerun.stdout
    assert staging(root) == [], "a killed runner's staging was left"
    assert features(root) == clean
    status = pipelines.etl_status(root)
    assert status["counts"] == {"done": 3} and status["lease"]["took_over"] >= 1

    # A worker killed mid-backfill by distributed's KillWorker plugin, armed on one
    # worker (registered, it would kill every worker of the team's cluster): it
    # segfaults, and its nanny starts it again.
    chaos_root = f"s3://suanli-test/shared-chaos-{uuid.uuid4().hex[:8]}"
    spec = cluster.ClusterSpec(kind="shared", address=team, tls=certificates["alice"])
    with cluster.start(spec) as joined:
        victim = sorted(joined.client.scheduler_info()["workers"])[0]

        async def arm(dask_worker: Any) -> None:
            await KillWorker(delay="0.5s", mode="segfault").setup(dask_worker)

        died: list[float] = []

        def watch() -> None:
            deadline = time.monotonic() + 120
            while not died and time.monotonic() < deadline:
                if victim not in joined.client.scheduler_info()["workers"]:
                    died.append(time.monotonic())
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        joined.client.run(arm, workers=[victim])
        result = pipelines.etl("sensor-faults", source, chaos_root, since=days[0],
                               until=days[-1], cluster=joined, parallel=1,
                               overrides={"train.epochs": 5})
        ended = time.monotonic()
        watcher.join(timeout=130)
        assert died and died[0] < ended, "the worker did not die during the backfill"
        joined.client.wait_for_workers(2, timeout=60)  # the team's cluster, whole again
    assert result.counts() == {"ran": 3}, result.summary()
    assert features(chaos_root) == clean

    # R7: the scheduler of a second shared cluster killed mid-backfill.
    scratch = {**profile, "address": f"tls://127.0.0.1:{_free_port()}",
               "tls": certificates["scheduler"], "workers": 1, "threads_per_worker": 1,
               "dashboard_address": None, "startup_timeout": "30s"}
    lost_root = f"s3://suanli-test/shared-lost-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    with dask.config.set({"suanli.cluster.profiles.scratch": scratch}):
        started = runner.invoke(main, ["cluster", "up", "scratch"])
        assert started.exit_code == 0, started.output
        cluster_id = re.search(r"started (\S+):", started.output).group(1)  # type: ignore[union-attr]
        from suanli.cluster.registry import find

        record = find(cluster_id)
        assert record is not None
        try:
            victim = cluster.ClusterSpec(kind="shared", address=scratch["address"],
                                         tls=certificates["alice"])
            with cluster.start(victim) as joined:
                threading.Timer(2.0, os.kill, (record.pids[0], signal.SIGKILL)).start()
                began = time.monotonic()
                with pytest.raises(pipelines.PipelineError,
                                   match=r"lost the scheduler .* rerun"):
                    pipelines.etl("sensor-faults", source, lost_root, since=days[0],
                                  until=days[-1], cluster=joined, parallel=1,
                                  overrides={"train.epochs": 5})
                assert time.monotonic() - began < 30
        finally:
            runner.invoke(main, ["cluster", "down", cluster_id])
    status = pipelines.etl_status(lost_root)
    assert set(status["counts"]) <= {"done"} and status["lease"]["state"] == "released"
    with cluster.start(spec) as joined:
        redone = pipelines.etl("sensor-faults", source, lost_root, since=days[0],
                               until=days[-1], cluster=joined, overrides={"train.epochs": 5})
    assert set(redone.counts()) <= {"done", "ran"}
    assert pipelines.etl_status(lost_root)["counts"] == {"done": 3}
    assert features(lost_root) == clean
