"""The ``ec2``, ``gcp`` and ``azure`` kinds: dask-cloudprovider's VM clusters.

Each kind turns the spec into the arguments of one dask-cloudprovider class;
``options`` in the spec adds or overrides any of that class's arguments
(region, instance type, image, network, ...). GPU workers run dask-cuda's
CUDAWorker on GPU machine types. Credentials are looked for where each cloud's
own tools put them, without any network call, so a missing login fails at
once with what to set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import import_backend, scheduler_options, worker_environment
from .errors import ClusterError, ClusterSpecError
from .kinds import Launch

if TYPE_CHECKING:
    from distributed.deploy.cluster import Cluster as DaskCluster

    from .spec import ClusterSpec

#: A container image with CUDA, dask and dask-cuda, for GPU workers.
DEFAULT_GPU_IMAGE = "rapidsai/base:26.10-cuda13-py3.12"
DEFAULT_CPU_IMAGE = "ghcr.io/dask/dask:latest"

_CLASSES = {
    "ec2": ("dask_cloudprovider.aws", "EC2Cluster"),
    "gcp": ("dask_cloudprovider.gcp", "GCPCluster"),
    "azure": ("dask_cloudprovider.azure", "AzureVMCluster"),
}


def _common(spec: ClusterSpec) -> dict[str, Any]:
    gpu = bool(spec.gpus)
    worker_options: dict[str, Any] = {"nthreads": spec.threads_per_worker or 1}
    if spec.memory_limit is not None:
        worker_options["memory_limit"] = spec.memory_limit
    if gpu:
        worker_options.update(spec.spill)
    return {
        "n_workers": spec.workers or 1,
        "worker_class": "dask_cuda.CUDAWorker" if gpu else "distributed.Nanny",
        "worker_options": worker_options,
        "scheduler_options": scheduler_options(spec),
        "docker_image": DEFAULT_GPU_IMAGE if gpu else DEFAULT_CPU_IMAGE,
        "env_vars": worker_environment(spec),
        # dask-cloudprovider makes temporary TLS certificates for the cluster.
        "security": True,
    }


def _require_option(spec: ClusterSpec, key: str, why: str) -> None:
    if key not in spec.options:
        raise ClusterSpecError(f"options.{key}", None, why)


def ec2_arguments(spec: ClusterSpec) -> dict[str, Any]:
    arguments = _common(spec)
    if spec.gpus:
        _require_option(spec, "instance_type",
                        "a GPU instance type such as g5.xlarge when gpus > 0")
    arguments.update(spec.options)
    return arguments


def gcp_arguments(spec: ClusterSpec) -> dict[str, Any]:
    arguments = _common(spec)
    _require_option(spec, "projectid", "the Google Cloud project to start the VMs in")
    if spec.gpus:
        arguments["ngpus"] = spec.gpus
        arguments.setdefault("gpu_type", "nvidia-tesla-t4")
        arguments["on_host_maintenance"] = "TERMINATE"  # GCP requires it for GPU VMs
    arguments.update(spec.options)
    return arguments


def azure_arguments(spec: ClusterSpec) -> dict[str, Any]:
    arguments = _common(spec)
    for key in ("resource_group", "vnet", "security_group"):
        _require_option(spec, key, "an existing Azure " + key.replace("_", " "))
    if spec.gpus:
        _require_option(spec, "vm_size", "a GPU VM size such as Standard_NC4as_T4_v3")
        arguments["docker_args"] = "--gpus=all"
    arguments.update(spec.options)
    return arguments


def _launch(kind: str, arguments: dict[str, Any], spec: ClusterSpec) -> Launch:
    module, name = _CLASSES[kind]
    shown = dict(arguments)
    if "DASK_INTERNAL_INHERIT_CONFIG" in shown.get("env_vars", {}):
        shown["env_vars"] = {**shown["env_vars"],
                             "DASK_INTERNAL_INHERIT_CONFIG": f"<the spec's config: "
                             f"{', '.join(sorted(spec.config))}>"}
    notes = [f"{arguments['n_workers']} worker VM(s) of class {arguments['worker_class']}",
             "TLS between client, scheduler and workers (temporary certificates)"]
    return Launch(f"{module}.{name}", shown, notes=tuple(notes))


def launch_ec2(spec: ClusterSpec) -> Launch:
    return _launch("ec2", ec2_arguments(spec), spec)


def launch_gcp(spec: ClusterSpec) -> Launch:
    return _launch("gcp", gcp_arguments(spec), spec)


def launch_azure(spec: ClusterSpec) -> Launch:
    return _launch("azure", azure_arguments(spec), spec)


def missing_credentials(kind: str, environ: dict[str, str] | None = None,
                        home: Path | None = None) -> str | None:
    """Why ``kind``'s credentials cannot be found (None when they can), offline."""
    env = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    if kind == "ec2":
        if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE") or env.get(
                "AWS_WEB_IDENTITY_TOKEN_FILE"):
            return None
        files = [Path(env.get("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials")),
                 Path(env.get("AWS_CONFIG_FILE", home / ".aws" / "config"))]
        if any(f.exists() for f in files):
            return None
        return ("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE), or run `aws configure`")
    if kind == "gcp":
        adc = home / ".config" / "gcloud" / "application_default_credentials.json"
        if env.get("GOOGLE_APPLICATION_CREDENTIALS") or adc.exists():
            return None
        return ("no Google Cloud credentials found: set GOOGLE_APPLICATION_CREDENTIALS to a "
                "service-account key file, or run `gcloud auth application-default login`")
    if kind == "azure":
        if env.get("AZURE_CLIENT_ID") or (home / ".azure").exists():
            return None
        return ("no Azure credentials found: set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
                "AZURE_CLIENT_SECRET, or run `az login`")
    raise ValueError(kind)


def _start(kind: str, arguments: dict[str, Any], spec: ClusterSpec) -> DaskCluster:
    module_name, class_name = _CLASSES[kind]
    module = import_backend(module_name, kind)
    problem = missing_credentials(kind)
    if problem is not None:
        raise ClusterError(f"cannot start a {kind!r} cluster: {problem}")
    if kind == "azure" and "subscription_id" not in arguments and not os.environ.get(
            "AZURE_SUBSCRIPTION_ID"):
        raise ClusterSpecError("options.subscription_id", None,
                               "your Azure subscription id (or set AZURE_SUBSCRIPTION_ID)")
    cluster: DaskCluster = getattr(module, class_name)(**arguments)
    return cluster


def start_ec2(spec: ClusterSpec) -> DaskCluster:
    return _start("ec2", ec2_arguments(spec), spec)


def start_gcp(spec: ClusterSpec) -> DaskCluster:
    return _start("gcp", gcp_arguments(spec), spec)


def start_azure(spec: ClusterSpec) -> DaskCluster:
    return _start("azure", azure_arguments(spec), spec)
