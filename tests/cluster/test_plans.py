"""Cloud, Kubernetes and HPC kinds up to their libraries' boundary, without credentials."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import yaml

from suanli import cluster
from suanli.cluster import ClusterError, ClusterSpecError
from suanli.cluster.cloud import missing_credentials


def _accepted(cls: type) -> set[str] | None:
    """Keyword arguments a class's constructor chain accepts (None: anything)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        names |= {p.name for p in parameters if p.kind is p.KEYWORD_ONLY
                  or p.kind is p.POSITIONAL_OR_KEYWORD}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return None


@pytest.mark.parametrize("kind, module, name, options", [
    ("ec2", "dask_cloudprovider.aws", "EC2Cluster",
     {"instance_type": "g5.xlarge", "region": "eu-west-1"}),
    ("gcp", "dask_cloudprovider.gcp", "GCPCluster", {"projectid": "lab-123", "zone": "us-east1-c"}),
    ("azure", "dask_cloudprovider.azure", "AzureVMCluster",
     {"resource_group": "rg", "vnet": "vnet", "security_group": "sg",
      "vm_size": "Standard_NC4as_T4_v3", "location": "westeurope"}),
])
def test_cloud_arguments_are_accepted_by_the_library(kind: str, module: str, name: str,
                                                     options: dict[str, str]) -> None:
    import importlib

    plan = cluster.launch_plan(kind, workers=3, gpus=1, threads_per_worker=4,
                               memory_limit="16GiB", idle_timeout="30 minutes",
                               options=options, config={"distributed.worker.memory.spill": 0.7})
    cls = getattr(importlib.import_module(module), name)
    accepted = _accepted(cls)
    assert accepted is not None
    assert set(plan.arguments) <= accepted, set(plan.arguments) - accepted
    assert plan.call == f"{module}.{name}"
    assert plan.arguments["n_workers"] == 3
    assert plan.arguments["worker_class"] == "dask_cuda.CUDAWorker"
    assert plan.arguments["worker_options"]["nthreads"] == 4
    assert plan.arguments["scheduler_options"] == {"idle_timeout": "30 minutes"}
    assert plan.arguments["security"] is True
    assert "DASK_INTERNAL_INHERIT_CONFIG" in plan.arguments["env_vars"]
    if kind == "gcp":
        assert plan.arguments["ngpus"] == 1 and plan.arguments["on_host_maintenance"] == "TERMINATE"


def test_gpu_cloud_workers_need_a_gpu_machine_type() -> None:
    with pytest.raises(ClusterSpecError, match=r"options\.instance_type"):
        cluster.launch_plan("ec2", gpus=1)
    with pytest.raises(ClusterSpecError, match=r"options\.projectid"):
        cluster.launch_plan("gcp")


@pytest.mark.parametrize("kind, variable", [("ec2", "AWS_ACCESS_KEY_ID"),
                                            ("gcp", "GOOGLE_APPLICATION_CREDENTIALS"),
                                            ("azure", "AZURE_CLIENT_ID")])
def test_missing_cloud_credentials_say_what_to_set(kind: str, variable: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith(("AWS_", "GOOGLE_", "AZURE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    options = {"gcp": {"projectid": "p"},
               "azure": {"resource_group": "r", "vnet": "v", "security_group": "s"}}
    with pytest.raises(ClusterError, match=variable):
        cluster.start(kind, options=options.get(kind, {}), startup_timeout="5s")
    assert missing_credentials(kind, environ={variable: "x"}, home=tmp_path) is None


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    monkeypatch.setitem(sys.modules, "dask_jobqueue.slurm", None)
    with pytest.raises(ClusterError, match=r"pip install 'suanli\[hpc\]'"):
        cluster.launch_plan("slurm", memory_limit="4GiB")


def test_slurm_job_script_for_cpu_workers() -> None:
    plan = cluster.launch_plan("slurm", workers=8, threads_per_worker=2, memory_limit="4GiB",
                               options={"processes": 4, "queue": "short", "account": "lab",
                                        "walltime": "02:00:00"},
                               environment={"OMP_NUM_THREADS": "1"})
    script = plan.artefacts["job script"]
    assert "#SBATCH -p short" in script and "#SBATCH -A lab" in script
    assert "#SBATCH --cpus-per-task=8" in script and "#SBATCH --mem=16G" in script
    assert "#SBATCH -t 02:00:00" in script
    assert "export OMP_NUM_THREADS=1" in script
    assert "distributed.cli.dask_worker" in script and "--nworkers 4" in script
    assert "scale(jobs=2)" in " ".join(plan.notes)


def test_slurm_and_pbs_job_scripts_for_gpu_workers() -> None:
    slurm = cluster.launch_plan("slurm", workers=2, gpus=4, memory_limit="64GiB",
                                spill={"device_memory_limit": "0.8"})
    script = slurm.artefacts["job script"]
    assert "#SBATCH --gres=gpu:4" in script
    assert "-m dask_cuda.cli" in script and "--device-memory-limit 0.8" in script
    pbs = cluster.launch_plan("pbs", workers=1, gpus=2, threads_per_worker=8,
                              memory_limit="32GiB", options={"queue": "gpuq"})
    script = pbs.artefacts["job script"]
    assert "#PBS -l select=1:ncpus=8:ngpus=2" in script and "#PBS -q gpuq" in script
    assert "-m dask_cuda.cli" in script


def test_batch_jobs_must_ask_for_memory() -> None:
    with pytest.raises(ClusterSpecError, match="memory_limit"):
        cluster.launch_plan("slurm")


def test_kubernetes_resource_for_gpu_workers() -> None:
    from dask_kubernetes.operator import KubeCluster

    plan = cluster.launch_plan("kubernetes", workers=4, gpus=1, threads_per_worker=8,
                               memory_limit="30GiB", idle_timeout="1h",
                               options={"name": "fleet", "namespace": "ml",
                                        "image": "ghcr.io/lab/suanli:1"},
                               environment={"TZ": "UTC"})
    resource = yaml.safe_load(plan.artefacts["DaskCluster resource"])
    assert resource["kind"] == "DaskCluster" and resource["metadata"]["name"] == "fleet"
    assert resource["spec"]["idleTimeout"] == 3600
    worker = resource["spec"]["worker"]
    assert worker["replicas"] == 4
    container = worker["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/lab/suanli:1"
    assert container["args"][0] == "dask-cuda-worker"
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "30Gi",
                                                "nvidia.com/gpu": 1}
    assert {"name": "TZ", "value": "UTC"} in container["env"]
    scheduler = resource["spec"]["scheduler"]["spec"]["containers"][0]
    assert scheduler["resources"] == {}  # no GPU for the scheduler
    accepted = _accepted(KubeCluster)
    assert accepted is None or set(plan.arguments) <= accepted
    assert plan.arguments["namespace"] == "ml"


def test_kubernetes_without_kube_config_says_so(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ClusterError, match="KUBECONFIG"):
        cluster.start("kubernetes", startup_timeout="5s")


def test_batch_kinds_need_the_submit_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ClusterError, match="sbatch is not on PATH"):
        cluster.start("slurm", memory_limit="4GiB")
