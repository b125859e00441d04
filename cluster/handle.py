"""A started cluster with its client: what :func:`suanli.cluster.start` returns."""

from __future__ import annotations

import html
import time
from types import TracebackType
from typing import TYPE_CHECKING

from .errors import ClusterError
from .kinds import starter_for
from .spec import ClusterSpec

if TYPE_CHECKING:
    from distributed import Client
    from distributed.deploy.cluster import Cluster as DaskCluster


class Cluster:
    """A running Dask cluster started by suanli, and a client connected to it.

    Use it as a context manager so the cluster is always closed::

        with cluster.start("local") as c:
            print(c.dashboard_link)
    """

    def __init__(self, spec: ClusterSpec, dask_cluster: DaskCluster, client: Client,
                 startup_seconds: float) -> None:
        self.spec = spec
        self.dask_cluster = dask_cluster
        self.client = client
        self.startup_seconds = startup_seconds

    @classmethod
    def start(cls, spec: ClusterSpec) -> Cluster:
        """Start the deployment for ``spec`` and connect a client (closed again on failure)."""
        from distributed import Client

        began = time.perf_counter()
        try:
            dask_cluster = starter_for(spec.kind)(spec)
        except Exception as error:
            raise ClusterError(f"could not start a {spec.kind!r} cluster: {error}") from error
        try:
            client = Client(dask_cluster)
        except Exception:
            dask_cluster.close()
            raise
        return cls(spec, dask_cluster, client, time.perf_counter() - began)

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard URL, or None when the dashboard is off."""
        if self.spec.dashboard_address is None:
            return None
        link: str = self.client.dashboard_link
        return link

    @property
    def scheduler_address(self) -> str:
        address: str = self.dask_cluster.scheduler_address
        return address

    @property
    def worker_count(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def close(self) -> None:
        """Close the client, then the cluster. Safe to call twice."""
        self.client.close()
        self.dask_cluster.close()

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
