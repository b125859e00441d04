from __future__ import annotations

import os
import time

import psutil
import pytest

from suanli import cluster
from suanli.cluster import ClusterError, ClusterSpec, ClusterSpecError


def _listening_addresses(pids: set[int]) -> list[str]:
    found = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            found.append(conn.laddr.ip)
    return found


def test_default_local_cluster_listens_only_on_loopback(local_cluster: cluster.Cluster) -> None:
    me = psutil.Process()
    pids = {me.pid} | {child.pid for child in me.children(recursive=True)}
    addresses = _listening_addresses(pids)
    # scheduler + dashboard in this process, one listener per worker and nanny
    assert len(addresses) >= 3
    assert set(addresses) == {"127.0.0.1"}, addresses
    assert local_cluster.dashboard_link is not None
    assert local_cluster.dashboard_link.startswith("http://127.0.0.1:")


def test_cluster_handle_runs_work_and_renders(local_cluster: cluster.Cluster) -> None:
    assert local_cluster.client.submit(sum, [1, 2, 3]).result() == 6
    assert local_cluster.worker_count == 2
    html = local_cluster._repr_html_()
    assert "Dashboard" in html and "127.0.0.1" in html and "<table>" in html


def test_context_manager_closes_cluster() -> None:
    with cluster.start("local", workers=1, threads_per_worker=1,
                       dashboard_address=None) as c:
        assert c.dashboard_link is None
        assert c.client.submit(lambda: 41 + 1).result() == 42
        seen = c.client.run(os.environ.get, "MALLOC_MMAP_THRESHOLD_")
        assert list(seen.values()) == [c.spec.environment["MALLOC_MMAP_THRESHOLD_"]]
    assert c.client.status == "closed"


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("workers", 0, "whole number >= 1"),
    ("threads_per_worker", -2, "whole number >= 1"),
    ("memory_limit", "lots", "a size such as"),
    ("dashboard_address", "8787", "host:port"),
    ("idle_timeout", "soon", "positive duration"),
    ("gpus", -1, "whole number >= 0"),
    ("environment", {"A": 1}, "string values"),
    ("hosts[0]", {"workers": 2}, "'address'"),
    ("hosts[0].workers", None, "whole number >= 1"),
    ("ssh.password", None, "check_host_keys"),
    ("spill.jit_unspill", None, "device_memory_limit"),
    ("tls.key", None, "tls needs ca_file, cert and key"),
])
def test_spec_validation_names_field_and_value(field: str, value: object, expected: str) -> None:
    overrides: dict[str, object] = {field: value}
    if field == "hosts[0]":
        overrides = {"hosts": (value,)}
    elif field == "hosts[0].workers":
        overrides = {"hosts": ({"address": "h", "workers": 0},)}
        value = 0
    elif field.startswith(("ssh.", "spill.")):
        section, key = field.split(".")
        overrides = {section: {key: "x"}}
        value = "x"
    elif field == "tls.key":
        overrides = {"tls": {"ca_file": "ca.pem", "cert": "c.pem"}}
    with pytest.raises(ClusterSpecError) as info:
        cluster.plan("local", **overrides)
    message = str(info.value)
    assert field in message and repr(value) in message and expected in message


@pytest.mark.parametrize(("kind", "overrides", "field", "expected"), [
    ("ssh", {}, "hosts", "at least one worker host"),
    ("shared", {}, "address", "scheduler address"),
    ("shared", {"address": "tcp://10.0.0.5:8786"}, "address", "requires TLS"),
    ("shared", {"address": "tls://10.0.0.5:8786"}, "tls", "requires TLS"),
    ("local-cuda", {"gpus": 0}, "gpus", "use kind local"),
])
def test_kind_specific_rules(kind: str, overrides: dict[str, object], field: str,
                             expected: str) -> None:
    with pytest.raises(ClusterSpecError) as info:
        cluster.plan(kind, **overrides)
    assert info.value.field == field and expected in str(info.value)


def test_insecure_shared_profile_is_explicit() -> None:
    spec = cluster.plan("shared", address="tcp://10.0.0.5:8786", insecure=True)
    assert "insecure: true" in " ".join(cluster.launch_plan(spec).notes)


def _scheduler_closes(c: cluster.Cluster, within: float) -> bool:
    scheduler = c.dask_cluster.scheduler  # type: ignore[union-attr]
    deadline = time.monotonic() + within
    while scheduler.status.name != "closed" and time.monotonic() < deadline:
        time.sleep(0.1)
    return bool(scheduler.status.name == "closed")


def _close_promptly(c: cluster.Cluster) -> None:
    """Closing after the scheduler went away must not wait out distributed's timeouts."""
    began = time.monotonic()
    c.close()
    assert time.monotonic() - began < 15


def test_idle_cluster_shuts_itself_down() -> None:
    c = cluster.start("local", workers=1, threads_per_worker=1, dashboard_address=None,
                      idle_timeout="1s")
    try:
        assert _scheduler_closes(c, within=30)
    finally:
        _close_promptly(c)


def test_config_reaches_the_workers() -> None:
    import dask.config

    with cluster.start("local", workers=1, threads_per_worker=1, dashboard_address=None,
                       config={"distributed.worker.memory.spill": 0.55,
                               "suanli": {"marker": "from-profile"}}) as c:
        seen = c.client.run(lambda: (dask.config.get("distributed.worker.memory.spill"),
                                     dask.config.get("suanli.marker")))
        assert list(seen.values()) == [(0.55, "from-profile")]
        # Nested sections merge: the rest of the workers' distributed config is intact.
        assert list(c.client.run(dask.config.get,
                                 "distributed.worker.memory.target").values()) == [0.6]
    assert dask.config.get("suanli.marker", default=None) is None


def test_version_mismatch_is_listed(local_cluster: cluster.Cluster) -> None:
    versions = local_cluster.client.get_versions(check=False)
    assert cluster.version_mismatches(versions) == []
    worker = next(iter(versions["workers"]))
    versions["workers"][worker]["packages"]["dask"] = "2001.1.0"
    versions["workers"][worker]["packages"]["python"] = "3.9.1.final.0"
    lines = cluster.version_mismatches(versions)
    assert any("dask differs" in line and "2001.1.0" in line and worker in line
               for line in lines)
    assert any(line.startswith("python differs") for line in lines)
    assert not any(line.startswith("distributed") for line in lines)


def test_auto_is_local_without_a_gpu() -> None:
    from suanli.cluster.auto import chosen_kind
    from suanli.cluster.gpus import visible_gpu_count

    assert chosen_kind(gpu_count=0) == "local" and chosen_kind(gpu_count=2) == "local-cuda"
    if visible_gpu_count() == 0:
        assert "auto chose 'local'" in cluster.launch_plan("auto").notes[0]
        with cluster.start("auto", workers=1, dashboard_address=None) as c:
            assert c.spec.kind == "local"


def test_local_cuda_without_a_gpu_says_so_and_suggests_local(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ClusterError, match=r"needs an NVIDIA GPU.*'local'.*'auto'"):
        cluster.start("local-cuda")


def test_local_cuda_arguments() -> None:
    plan = cluster.launch_plan("local-cuda", gpus=2, spill={"device_memory_limit": "0.7",
                                                            "rmm_pool_size": "20GB"})
    assert plan.call == "dask_cuda.LocalCUDACluster"
    assert plan.arguments["CUDA_VISIBLE_DEVICES"] == [0, 1]
    assert plan.arguments["n_workers"] == 2
    assert plan.arguments["device_memory_limit"] == "0.7"
    assert plan.arguments["rmm_pool_size"] == "20GB"
    assert plan.arguments["host"] == "127.0.0.1"
    assert "0.7" in " ".join(plan.notes)


def test_unknown_kind_lists_known_kinds() -> None:
    with pytest.raises(ClusterSpecError, match="local"):
        cluster.plan("nonesuch")
    with pytest.raises(ClusterSpecError, match="kind"):
        cluster.plan(ClusterSpec(kind="nonesuch"))


def test_profiles_come_from_dask_config() -> None:
    spec = cluster.plan("test")
    assert spec.workers == 2 and spec.dashboard_address == "127.0.0.1:0"
    assert cluster.plan("test", workers=3).workers == 3
    assert "test" in cluster.profile_names()


def test_default_layout_fits_small_and_large_machines() -> None:
    from suanli.cluster.local import default_layout

    assert default_layout(2) == (2, 1)
    workers, threads = default_layout(64)
    assert workers * threads == 64 and 4 <= workers <= 16


def _my_worker_processes() -> set[int]:
    found = set()
    for process in psutil.Process().children(recursive=True):
        try:  # a worker killed by an earlier test may be a zombie until its nanny reaps it
            if "spawn_main" in " ".join(process.cmdline()):
                found.add(process.pid)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def test_a_start_that_fails_after_launch_leaves_nothing_running(
        monkeypatch: pytest.MonkeyPatch, local_cluster: cluster.Cluster) -> None:
    from suanli.cluster import handle, registry

    before = _my_worker_processes()

    def mismatch(client: object) -> None:
        raise ClusterError("the cluster's Python packages do not match this client's")

    monkeypatch.setattr(handle, "check_versions", mismatch)
    with pytest.raises(ClusterError, match="do not match"):
        cluster.start("local", workers=2, threads_per_worker=1, dashboard_address=None)
    deadline = time.monotonic() + 10
    while _my_worker_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _my_worker_processes() - before
    assert all(r.kind != "local" or r.id == local_cluster.record_id
               for r in registry.records())


def test_started_clusters_are_listed_and_down_stops_them() -> None:
    from click.testing import CliRunner

    from suanli.pipelines.cli import main

    runner = CliRunner()
    c = cluster.start("local", workers=1, threads_per_worker=1, dashboard_address=None)
    try:
        listed = runner.invoke(main, ["cluster", "list"])
        assert c.record_id is not None and c.record_id in listed.output
        assert c.scheduler_address in listed.output
        stopped = runner.invoke(main, ["cluster", "down", c.record_id])
        assert stopped.exit_code == 0, stopped.output
        assert _scheduler_closes(c, within=10)
    finally:
        _close_promptly(c)
    assert c.record_id not in runner.invoke(main, ["cluster", "list"]).output


@pytest.mark.timeout(120)
def test_lost_workers_are_started_again_and_the_planned_threads_stay() -> None:
    """distributed's cluster object drops a worker that has not come back within
    ``lost-worker-timeout`` (15 s; 0 s here, so a kill is enough); replace_lost_workers
    brings the cluster back to its specification, and the planned threads (which
    lay out training) never change."""
    import signal

    import dask.config

    with cluster.start("local", workers=2, threads_per_worker=1, dashboard_address=None) as c:
        assert c.planned_threads == 2 and c.replace_lost_workers() == 0
        assert c.dask_cluster is not None
        victim = next(iter(c.client.run(os.getpid).values()))
        with dask.config.set({"distributed.deploy.lost-worker-timeout": "0s"}):
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while len(c.dask_cluster.workers) == 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        assert len(c.dask_cluster.workers) == 1  # dropped, and not coming back by itself
        assert c.planned_threads == 2
        assert c.replace_lost_workers() == 1  # started again; it returns once one runs
        c.client.wait_for_workers(2, timeout=60)
        pids = set(c.client.run(os.getpid).values())
        assert len(pids) == 2 and victim not in pids
        # The cluster object records the new nanny a moment after its worker joins the
        # scheduler (a loaded CI machine saw the gap).
        deadline = time.monotonic() + 30
        while len(c.dask_cluster.workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.replace_lost_workers() == 0
