"""A kind checks its own fields and names its workers' plugins (registered kinds too)."""

from __future__ import annotations

from typing import Any

import pytest
from distributed import LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from suanli import cluster
from suanli.cluster import ClusterSpec, ClusterSpecError, kind_definition
from suanli.cluster import kinds as kind_registry


class Marker(WorkerPlugin):
    """Leaves a mark on each worker it is set up on."""

    name = "suanli-test-marker"

    def setup(self, worker: Any) -> None:
        worker.suanli_test_marker = True


def _start(spec: ClusterSpec) -> LocalCluster:
    # In this process, over inproc://: no socket at all.
    return LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                        dashboard_address=None)


def _validate(spec: ClusterSpec) -> None:
    if spec.options.get("flavour") not in ("plain", "marked"):
        raise ClusterSpecError("options.flavour", spec.options.get("flavour"), "plain or marked")


def _plugins(spec: ClusterSpec) -> list[Any]:
    return [Marker()] if spec.options["flavour"] == "marked" else []


@pytest.fixture
def demo_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(kind_registry, "_registered", dict(kind_registry._registered))
    cluster.register_kind("demo", _start, validate=_validate, worker_plugins=_plugins)
    return "demo"


def test_a_registered_kind_validates_its_own_fields(demo_kind: str) -> None:
    with pytest.raises(ClusterSpecError, match=r"'options.flavour' = 'sour'.*plain or marked"):
        cluster.plan(demo_kind, options={"flavour": "sour"})
    assert cluster.plan(demo_kind, options={"flavour": "plain"}).kind == demo_kind


def test_a_kinds_worker_plugins_are_on_its_workers(demo_kind: str) -> None:
    with cluster.start(demo_kind, options={"flavour": "marked"}) as started:
        marks = started.client.run(lambda dask_worker: getattr(
            dask_worker, "suanli_test_marker", False))
        assert list(marks.values()) == [True]


@pytest.mark.parametrize(("spec", "message"), [
    (dict(kind="ssh"), "at least one worker host"),
    (dict(kind="shared", address="tcp://127.0.0.1:8786"), "requires TLS"),
    (dict(kind="local-cuda", gpus=0), "at least 1 for local-cuda"),
    (dict(kind="local", threads_per_worker=10_000), r"at most \d+ \(4x the \d+ cores here\)"),
    (dict(kind="auto", threads_per_worker=10_000), r"4x the \d+ cores here"),
])
def test_the_builtin_kinds_check_their_fields_in_their_own_modules(
        spec: dict[str, Any], message: str) -> None:
    assert kind_definition(spec["kind"]).validate is not None
    with pytest.raises(ClusterSpecError, match=message):
        cluster.plan(spec.pop("kind"), **spec)


def test_gpu_kinds_give_their_workers_a_cupy_memory_pool() -> None:
    from suanli.cluster.plugins import CupyMemoryPool

    local_cuda = kind_definition("local-cuda").worker_plugins
    ssh = kind_definition("ssh").worker_plugins
    assert local_cuda is not None and ssh is not None
    assert [type(p) for p in local_cuda(ClusterSpec(kind="local-cuda"))] == [CupyMemoryPool]
    with_gpus = ClusterSpec(kind="ssh", hosts=({"address": "127.0.0.1", "gpus": 1},))
    assert [type(p) for p in ssh(with_gpus)] == [CupyMemoryPool]
    assert ssh(ClusterSpec(kind="ssh", hosts=("127.0.0.1",))) == []
    assert kind_definition("local").worker_plugins is None
