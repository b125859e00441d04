"""A started cluster with its client: what :func:`suanli.cluster.start` returns."""

from __future__ import annotations

import contextlib
import dataclasses
import html
import os
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from . import registry
from .errors import ClusterError, SchedulerLost
from .kinds import kind_definition
from .preflight import check_versions
from .spec import ClusterSpec

if TYPE_CHECKING:
    from distributed import Client, LocalCluster
    from distributed.deploy.cluster import Cluster as DaskCluster


class Cluster:
    """A running Dask cluster started by suanli, and a client connected to it.

    Use it as a context manager so the cluster is always closed::

        with cluster.start("local") as c:
            print(c.dashboard_link)
    """

    def __init__(self, spec: ClusterSpec, dask_cluster: DaskCluster | None, client: Client,
                 startup_seconds: float, record_id: str | None = None) -> None:
        self.spec = spec
        #: The Dask deployment object; None for kinds that join a running scheduler.
        self.dask_cluster = dask_cluster
        self.client = client
        self.startup_seconds = startup_seconds
        self.record_id = record_id

    @classmethod
    def start(cls, spec: ClusterSpec, profile: str | None = None) -> Cluster:
        """Start the deployment for ``spec`` and connect a client.

        Anything started is closed again when a later step fails (client
        connection, version pre-flight), so a failed start leaves nothing running.
        """
        if spec.kind == "auto":
            from .auto import chosen_kind

            spec = dataclasses.replace(spec, kind=chosen_kind())
        began = time.perf_counter()
        definition = kind_definition(spec.kind)
        try:
            started = definition.start(spec)
        except ClusterError:
            raise
        except Exception as error:
            raise ClusterError(f"could not start a {spec.kind!r} cluster: {error}") from error
        dask_cluster = None if isinstance(started, str) else started
        try:
            client = _connect(spec, started)
            trouble = definition.worker_trouble
            try:
                if definition.expected_workers is not None:
                    _wait_for_workers(client, definition.expected_workers(spec), spec,
                                      None if trouble is None or dask_cluster is None
                                      else lambda: trouble(dask_cluster))
                check_versions(client)
                # Registered with the scheduler: workers that join later get them too.
                for plugin in (definition.worker_plugins(spec)
                               if definition.worker_plugins else ()):
                    client.register_plugin(plugin)
            except BaseException:
                client.close()
                raise
        except BaseException:
            if dask_cluster is not None:
                # dask-jobqueue asserts on closing a job whose submission failed; the
                # start's own error is the one to report.
                with contextlib.suppress(AssertionError):
                    dask_cluster.close()
            raise
        handle = cls(spec, dask_cluster, client, time.perf_counter() - began)
        if dask_cluster is not None:
            handle.record_id = registry.new_id(spec.kind)
            registry.save(registry.ClusterRecord(
                id=handle.record_id, kind=spec.kind, scheduler_address=handle.scheduler_address,
                dashboard_link=handle.dashboard_link, owner_pid=os.getpid(), profile=profile,
                batch_job_name=str(spec.options["job_name"]) if "job_name" in spec.options
                else None))
        return handle

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard URL, or None when the dashboard is off."""
        if self.dask_cluster is not None and self.spec.dashboard_address is None:
            return None
        link: str | None = self.client.dashboard_link
        return link

    @property
    def scheduler_address(self) -> str:
        if self.dask_cluster is not None:
            address: str = self.dask_cluster.scheduler_address
            return address
        return str(self.spec.address)

    @property
    def worker_count(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    @property
    def planned_threads(self) -> int:
        """The worker threads this cluster was started to have.

        For a local cluster this is its workers' specification, the same for every
        run on it whichever workers happen to be alive (one killed and restarting,
        RELIABILITY R3), so work laid out by it is laid out the same each time.
        Elsewhere, the threads of the workers there now.
        """
        local = self._local_cluster()
        if local is not None:
            threads = [entry.get("options", {}).get("nthreads")
                       for entry in local.worker_spec.values()]
            if threads and all(isinstance(t, int) for t in threads):
                return sum(threads)
        return sum(self.client.nthreads().values())

    def replace_lost_workers(self) -> int:
        """Start again the workers of a local cluster that are gone for good; how many.

        A nanny restarts its worker after a crash, but distributed's cluster object
        closes a nanny whose worker has not come back ``lost-worker-timeout`` (15 s)
        after it was lost, which happens when a worker crashes again while
        restarting. Such a cluster would stay smaller for the rest of its life, and
        with none left every run fails; this brings it back to its specification and
        waits (``startup_timeout``) until one worker at least is running: not all of
        them, since under repeated crashes (R3's chaos) all may never run at once.
        The others join as they come; the work does not depend on how many there are.
        """
        local = self._local_cluster()
        if local is None:
            return 0
        lost = len(local.worker_spec) - len(local.workers)
        if lost > 0:
            local.scale(len(local.worker_spec))  # reopens the specification's missing names
            _wait_for_workers(self.client, 1, self.spec)
        return max(lost, 0)

    def scale(self, workers: int) -> None:
        """Ask for ``workers`` workers in all (batch kinds submit or cancel jobs for them;
        local and ssh start or stop processes). Returns at once; workers join as they
        start. Kinds that join a running scheduler cannot be scaled."""
        if self.dask_cluster is None:
            raise ClusterError(f"a {self.spec.kind!r} cluster's workers are started by "
                               f"whoever runs it; suanli cannot scale it")
        self.dask_cluster.scale(workers)

    def _local_cluster(self) -> LocalCluster | None:
        from distributed import LocalCluster

        return self.dask_cluster if isinstance(self.dask_cluster, LocalCluster) else None

    def close(self) -> None:
        """Close the client, then the cluster (a shared one is left running). Safe twice."""
        # A client still trying to reconnect means the scheduler is gone (idle
        # timeout, `suanli cluster down`); closing the deployment would then wait
        # distributed's full connect timeout for it, so bound the wait.
        scheduler_gone = self.client.status not in ("running", "closed")
        self.client.close(timeout=5)
        if self.dask_cluster is not None:
            if scheduler_gone:
                with contextlib.suppress(TimeoutError, OSError):
                    self.dask_cluster.close(timeout=5)
            else:
                self.dask_cluster.close()
        if self.record_id is not None:
            registry.forget(self.record_id)

    @contextlib.contextmanager
    def failing_fast_if_scheduler_lost(self, grace: float = 5.0) -> Iterator[None]:
        """Raise :class:`SchedulerLost` within about ``grace`` seconds of the scheduler
        going away while the block runs (RELIABILITY R7).

        Left alone, distributed's client keeps trying to reconnect for its whole
        connect timeout and then fails with a bare ``CommClosedError``. A watcher
        thread closes the client once it has been disconnected for ``grace``
        seconds, which ends whatever the block was waiting for.
        """
        lost, finished = threading.Event(), threading.Event()

        def watch() -> None:
            since: float | None = None
            while not finished.wait(0.25):
                if self.client.status == "running":
                    since = None
                    continue
                since = since or time.monotonic()
                if time.monotonic() - since >= grace:
                    lost.set()
                    with contextlib.suppress(Exception):
                        self.client.close(timeout=2)
                    return

        watcher = threading.Thread(target=watch, name="suanli-scheduler-watch", daemon=True)
        watcher.start()
        try:
            yield
        except BaseException as error:
            if not lost.is_set() and self.client.status != "running":
                # A call that met the closed connection at once (a broadcast, a
                # gather): whether the scheduler is gone for good is the watcher's call.
                lost.wait(grace + 1.0)
            if lost.is_set():
                raise SchedulerLost(
                    f"lost the scheduler at {self.scheduler_address}: it stopped answering "
                    f"during the run (stopped, crashed or unreachable) and did not come back "
                    f"within {grace:g} s. Nothing was written; rerun once the cluster is "
                    f"back.") from error
            raise
        finally:
            finished.set()
            watcher.join(timeout=2)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<suanli Cluster kind={self.spec.kind!r} workers={self.worker_count} "
                f"scheduler={self.scheduler_address!r} dashboard={self.dashboard_link!r}>")

    def _repr_html_(self) -> str:
        link = self.dashboard_link
        dash = (f'<a href="{html.escape(link)}" target="_blank">{html.escape(link)}</a>'
                if link else "off")
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        threads = sum(w.get("nthreads", 0) for w in info.values())
        memory = sum(w.get("memory_limit", 0) or 0 for w in info.values())
        rows = [
            ("Kind", html.escape(self.spec.kind)),
            ("Scheduler", html.escape(self.scheduler_address)),
            ("Dashboard", dash),
            ("Workers", str(len(info))),
            ("Threads", str(threads)),
            ("Memory", f"{memory / 2**30:.1f} GiB" if memory else "unlimited"),
        ]
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>"
                       for k, v in rows)
        return f"<div><strong>suanli cluster</strong><table>{body}</table></div>"


def _wait_for_workers(client: Client, count: int, spec: ClusterSpec,
                      trouble: Callable[[], tuple[str | None, str]] | None = None) -> None:
    """Wait ``startup_timeout`` for ``count`` workers; with ``trouble``, ask the kind
    every second or so whether they can still come, and fail at once if not."""
    from dask.utils import parse_timedelta

    timeout = parse_timedelta(spec.startup_timeout)
    deadline = time.monotonic() + timeout
    summary = ""
    while True:
        left = deadline - time.monotonic()
        try:
            client.wait_for_workers(count, timeout=max(min(left, 2.0), 0.1)
                                    if trouble else timeout)
            return
        except TimeoutError as error:
            joined = len(client.scheduler_info(n_workers=-1)["workers"])
            if trouble is not None:
                fatal, summary = trouble()
                if fatal is not None:
                    raise ClusterError(f"{joined} of {count} workers joined the {spec.kind!r} "
                                       f"cluster: {fatal}") from error
            if trouble is None or time.monotonic() >= deadline:
                raise ClusterError(f"only {joined} of {count} workers joined the {spec.kind!r} "
                                   f"cluster within {timeout:g} s"
                                   + (f" ({summary})" if summary else "")) from error


def _connect(spec: ClusterSpec, started: DaskCluster | str) -> Client:
    """A client for a started deployment, or for a running scheduler's address."""
    from dask.utils import parse_timedelta
    from distributed import Client

    timeout = parse_timedelta(spec.startup_timeout)
    if not isinstance(started, str):
        return Client(started, timeout=timeout)
    from .shared import security_for

    try:
        return Client(started, security=security_for(spec), timeout=timeout)
    except Exception as error:
        if started.startswith("tls://"):
            hint = ("the cluster requires TLS with certificates signed by its CA: check that "
                    "the profile's tls.ca_file, tls.cert and tls.key are the ones issued "
                    "for this cluster")
        else:
            hint = ("is the scheduler running there, and does it speak plain tcp? A shared "
                    "cluster usually requires TLS: use its tls:// address and certificates")
        raise ClusterError(f"could not connect to the scheduler at {started}: {hint} "
                           f"({type(error).__name__}: {error})") from error
