from __future__ import annotations

import os

import psutil
import pytest

from suanli import cluster
from suanli.cluster import ClusterSpec, ClusterSpecError


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
])
def test_spec_validation_names_field_and_value(field: str, value: object, expected: str) -> None:
    with pytest.raises(ClusterSpecError) as info:
        cluster.plan("local", **{field: value})
    message = str(info.value)
    assert field in message and repr(value) in message and expected in message


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
