"""The ``slurm`` and ``pbs`` kinds: dask-jobqueue's batch-job clusters.

Workers run as batch jobs; each job runs ``options.processes`` worker processes
(default 1) of ``threads_per_worker`` threads and ``memory_limit`` memory each.
GPU jobs ask the batch system for ``gpus`` GPUs and run dask-cuda's worker,
one worker per GPU. ``options`` adds or overrides any argument of the
dask-jobqueue class (queue, account, walltime, interface, ...).
``suanli cluster plan`` prints the job script dask-jobqueue would submit.
"""

from __future__ import annotations

import math
import shlex
import shutil
from typing import TYPE_CHECKING, Any

from dask.utils import format_bytes, parse_bytes

from .backends import import_backend, scheduler_options, worker_environment
from .batch_jobs import refused_submission, worker_trouble
from .errors import ClusterError, ClusterSpecError
from .kinds import Launch

if TYPE_CHECKING:
    from distributed.deploy.cluster import Cluster as DaskCluster

    from .spec import ClusterSpec

_CLASSES = {"slurm": ("SLURMCluster", "SLURMJob", "sbatch"),
            "pbs": ("PBSCluster", "PBSJob", "qsub")}
#: Where the rendered job script connects to: the real address exists only once
#: the scheduler runs (on the machine that starts the cluster).
PLACEHOLDER_SCHEDULER = "tcp://SCHEDULER-ADDRESS:8786"


def jobs_needed(spec: ClusterSpec) -> int:
    """How many batch jobs give ``spec.workers`` workers."""
    if spec.gpus:
        return spec.workers or 1  # one job per GPU worker host
    processes = int(spec.options.get("processes", 1))
    return math.ceil((spec.workers or 1) / processes)


def job_arguments(kind: str, spec: ClusterSpec) -> dict[str, Any]:
    """The dask-jobqueue arguments for ``spec`` (the cluster's and each job's)."""
    gpu = bool(spec.gpus)
    processes = 1 if gpu else int(spec.options.get("processes", 1))
    threads = spec.threads_per_worker or 1
    if spec.memory_limit in (None, "auto") and "memory" not in spec.options:
        raise ClusterSpecError("memory_limit", spec.memory_limit,
                               "a size per worker such as '8GiB': a batch job must ask "
                               "for its memory")
    arguments: dict[str, Any] = {"cores": threads * processes, "processes": processes}
    if spec.memory_limit not in (None, "auto"):
        per_worker = parse_bytes(spec.memory_limit)
        arguments["memory"] = format_bytes(per_worker * processes).replace(" ", "")
    if spec.remote_python:
        arguments["python"] = spec.remote_python
    prologue = [f"export {name}={shlex.quote(value)}"
                for name, value in worker_environment(spec).items()]
    if prologue:
        arguments["job_script_prologue"] = prologue
    if gpu:
        arguments["worker_command"] = "dask_cuda.cli"
        if kind == "slurm":
            arguments["job_extra_directives"] = [f"--gres=gpu:{spec.gpus}"]
        else:
            arguments["resource_spec"] = f"select=1:ncpus={threads}:ngpus={spec.gpus}"
        for key, value in spec.spill.items():
            arguments.setdefault("worker_extra_args", []).extend(
                [f"--{key.replace('_', '-')}", str(value)])
    # The dashboard as the spec says (dask-jobqueue's own default is every interface);
    # the profile's scheduler_options add to these rather than replace them.
    scheduler = {**scheduler_options(spec), "dashboard_address": spec.dashboard_address,
                 **spec.options.get("scheduler_options", {})}
    if scheduler["dashboard_address"] is None:
        scheduler["dashboard"] = False
        del scheduler["dashboard_address"]
    arguments["scheduler_options"] = scheduler
    arguments.update({k: v for k, v in spec.options.items()
                      if k not in ("processes", "scheduler_options")})
    return arguments


def job_script(kind: str, spec: ClusterSpec) -> str:
    """The batch script dask-jobqueue would submit for one job, rendered by dask-jobqueue."""
    job_module = import_backend(f"dask_jobqueue.{kind}", kind)
    job_class = getattr(job_module, _CLASSES[kind][1])
    arguments = {k: v for k, v in job_arguments(kind, spec).items()
                 if k != "scheduler_options"}
    # Named as dask-jobqueue names the first job's worker, so the plan is that job's script.
    script: str = job_class(scheduler=PLACEHOLDER_SCHEDULER, name=f"{_CLASSES[kind][0]}-0",
                            **arguments).job_script()
    return script


def _launch(kind: str, spec: ClusterSpec) -> Launch:
    class_name = _CLASSES[kind][0]
    arguments = job_arguments(kind, spec)
    jobs = jobs_needed(spec)
    return Launch(
        f"dask_jobqueue.{class_name}", arguments,
        artefacts={"job script": job_script(kind, spec)},
        notes=(f"then scale(jobs={jobs}): {jobs} batch job(s) submitted with "
               f"{_CLASSES[kind][2]}",
               f"{PLACEHOLDER_SCHEDULER} stands for the scheduler's address, known once it runs"),
    )


def _start(kind: str, spec: ClusterSpec) -> DaskCluster:
    class_name, _, submit = _CLASSES[kind]
    arguments = job_arguments(kind, spec)
    module = import_backend("dask_jobqueue", kind)
    if shutil.which(submit) is None:
        raise ClusterError(f"cannot start a {kind!r} cluster here: {submit} is not on PATH; "
                           "run on the batch system's login node")
    cluster: Any = getattr(module, class_name)(**arguments)
    if kind == "slurm":
        refused = refused_submission(cluster.job_script())
        if refused is not None:
            cluster.close()
            raise ClusterError(
                f"SLURM refuses the worker jobs: {refused}. Each job asks for "
                f"{arguments['cores']} core(s) and {arguments.get('memory', 'no memory')}"
                + (f" in partition {arguments['queue']!r}" if arguments.get("queue") else "")
                + "; 'suanli cluster plan' shows the job script, 'sinfo' what the "
                "partitions offer")
    cluster.scale(jobs=jobs_needed(spec))  # dask-jobqueue scales by jobs
    return cluster


def expected_workers(spec: ClusterSpec) -> int:
    """Workers the jobs start in all: one per GPU on GPU jobs, else ``processes`` each."""
    per_job = spec.gpus if spec.gpus else int(spec.options.get("processes", 1))
    return jobs_needed(spec) * per_job


def launch_slurm(spec: ClusterSpec) -> Launch:
    return _launch("slurm", spec)


def launch_pbs(spec: ClusterSpec) -> Launch:
    return _launch("pbs", spec)


def start_slurm(spec: ClusterSpec) -> DaskCluster:
    return _start("slurm", spec)


def start_pbs(spec: ClusterSpec) -> DaskCluster:
    return _start("pbs", spec)


expected_workers_slurm = expected_workers_pbs = expected_workers
#: SLURM's states and reasons for the jobs, while the workers are awaited.
worker_trouble_slurm = worker_trouble
