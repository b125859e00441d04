"""The ``kubernetes`` kind: a DaskCluster resource run by the dask-kubernetes operator.

The resource is rendered with dask-kubernetes' own ``make_cluster_spec`` and
handed to ``KubeCluster(custom_cluster_spec=...)``; ``suanli cluster plan``
prints it as YAML. GPU workers request ``nvidia.com/gpu`` and run
``dask-cuda-worker``; the scheduler asks for no GPU.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from dask.utils import parse_timedelta

from .backends import import_backend, worker_environment
from .cloud import DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE
from .errors import ClusterError
from .kinds import Launch

if TYPE_CHECKING:
    from distributed.deploy.cluster import Cluster as DaskCluster

    from .spec import ClusterSpec

#: Keys of ``options`` this kind reads; anything else goes to KubeCluster itself.
RESOURCE_OPTIONS = ("name", "image", "namespace")


def _resources(spec: ClusterSpec) -> dict[str, dict[str, Any]]:
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if spec.threads_per_worker:
        requests["cpu"] = str(spec.threads_per_worker)
        limits["cpu"] = str(spec.threads_per_worker)
    if spec.memory_limit not in (None, "auto"):
        limits["memory"] = requests["memory"] = str(spec.memory_limit).replace("iB", "i")
    if spec.gpus:
        limits["nvidia.com/gpu"] = spec.gpus
    out: dict[str, dict[str, Any]] = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def cluster_resource(spec: ClusterSpec) -> dict[str, Any]:
    """The DaskCluster resource for ``spec`` (needs dask-kubernetes to render)."""
    operator = import_backend("dask_kubernetes.operator", "kubernetes")
    gpu = bool(spec.gpus)
    resource: dict[str, Any] = operator.make_cluster_spec(
        name=spec.options.get("name", "suanli"),
        image=spec.options.get("image", DEFAULT_GPU_IMAGE if gpu else DEFAULT_CPU_IMAGE),
        n_workers=spec.workers or 1,
        resources=_resources(spec) or None,
        env=worker_environment(spec) or None,
        worker_command="dask-cuda-worker" if gpu else "dask-worker",
        idle_timeout=int(parse_timedelta(spec.idle_timeout)) if spec.idle_timeout else 0,
    )
    # make_cluster_spec gives the scheduler the workers' resources (one object
    # shared by both): a scheduler needs neither a GPU nor the workers' size.
    for container in resource["spec"]["scheduler"]["spec"]["containers"]:
        container["resources"] = {}
    for container in resource["spec"]["worker"]["spec"]["containers"]:
        container["resources"] = copy.deepcopy(container.get("resources") or {})
        if spec.threads_per_worker:
            container["args"] += ["--nthreads", str(spec.threads_per_worker)]
    return resource


def kube_arguments(spec: ClusterSpec) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "custom_cluster_spec": cluster_resource(spec),
        "resource_timeout": int(parse_timedelta(spec.startup_timeout)),
        "shutdown_on_close": True,
    }
    if "namespace" in spec.options:
        arguments["namespace"] = spec.options["namespace"]
    arguments.update({k: v for k, v in spec.options.items() if k not in RESOURCE_OPTIONS})
    return arguments


def launch(spec: ClusterSpec) -> Launch:
    arguments = kube_arguments(spec)
    resource = arguments.pop("custom_cluster_spec")
    arguments["custom_cluster_spec"] = "<the DaskCluster resource below>"
    return Launch("dask_kubernetes.operator.KubeCluster", arguments,
                  artefacts={"DaskCluster resource": yaml.safe_dump(resource, sort_keys=False)},
                  notes=("needs the dask-kubernetes operator installed in the cluster",))


def missing_kube_config(environ: dict[str, str] | None = None,
                        home: Path | None = None) -> str | None:
    env = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    if env.get("KUBERNETES_SERVICE_HOST"):  # running inside a pod
        return None
    paths = env.get("KUBECONFIG", str(home / ".kube" / "config")).split(os.pathsep)
    if any(Path(p).exists() for p in paths if p):
        return None
    return ("no Kubernetes credentials found: set KUBECONFIG, or create ~/.kube/config "
            "(for example with your cloud's `get-credentials` command)")


def start(spec: ClusterSpec) -> DaskCluster:
    arguments = kube_arguments(spec)
    operator = import_backend("dask_kubernetes.operator", "kubernetes")
    problem = missing_kube_config()
    if problem is not None:
        raise ClusterError(f"cannot start a 'kubernetes' cluster: {problem}")
    cluster: DaskCluster = operator.KubeCluster(**arguments)
    return cluster
