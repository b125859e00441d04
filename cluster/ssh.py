"""The ``ssh`` kind: distributed's SSH deployment, with per-host workers and GPU hosts.

distributed's ``SSHCluster`` is a thin function that builds a SpecCluster from
its ``distributed.deploy.ssh`` Scheduler and Worker classes, one worker entry
per host with the same options for all. suanli builds that same SpecCluster
itself so each host gets its own worker count, Python, interface and worker
class (dask-cuda's CUDAWorker on GPU hosts), and wraps the two classes only to
bound their start-up time: a remote process that never reports its address
would otherwise leave the caller waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dask.utils import parse_timedelta

from .backends import import_backend, scheduler_options, worker_settings
from .errors import ClusterError, ClusterSpecError
from .kinds import Launch

if TYPE_CHECKING:
    from distributed.deploy.spec import SpecCluster

    from .spec import ClusterSpec

CPU_WORKER = "distributed.Nanny"
GPU_WORKER = "dask_cuda.CUDAWorker"
DEFAULT_CONNECT_TIMEOUT = "10s"


def connect_options(spec: ClusterSpec) -> dict[str, Any]:
    """asyncssh connection options; host keys are checked unless turned off explicitly."""
    ssh = spec.ssh
    options: dict[str, Any] = {
        "connect_timeout": parse_timedelta(ssh.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
    }
    if ssh.get("check_host_keys", True) is False:
        options["known_hosts"] = None  # asyncssh: accept any host key
    elif "known_hosts" in ssh:
        options["known_hosts"] = os.path.expanduser(str(ssh["known_hosts"]))
    # else asyncssh's default: ~/.ssh/known_hosts, and an unknown host is refused
    for key in ("username", "port"):
        if key in ssh:
            options[key] = ssh[key]
    if "client_keys" in ssh:
        keys = ssh["client_keys"]
        options["client_keys"] = [os.path.expanduser(str(k))
                                  for k in ([keys] if isinstance(keys, str) else keys)]
    return options


def validate(spec: ClusterSpec) -> None:
    if not spec.hosts:
        raise ClusterSpecError("hosts", list(spec.hosts),
                               "at least one worker host for an ssh cluster")


def worker_plugins(spec: ClusterSpec) -> list[Any]:
    """A CuPy memory pool on each worker, where the hosts have GPUs (CUDA workers)."""
    if not any(entry["gpus"] for entry in spec.host_entries()):
        return []
    from .plugins import CupyMemoryPool

    return [CupyMemoryPool()]


def scheduler_host(spec: ClusterSpec) -> str:
    """The host the scheduler runs on: ``address``, else the first worker host."""
    if spec.address:
        return spec.address
    return spec.host_entries()[0]["address"]


def ssh_arguments(spec: ClusterSpec) -> dict[str, Any]:
    """The scheduler and per-host worker options, JSON-ready."""
    host = scheduler_host(spec)
    scheduler = {
        # Listen on the scheduler host's own address, not on every interface.
        "host": host,
        "dashboard_address": spec.dashboard_address or "",
        "dashboard": spec.dashboard_address is not None,
        **scheduler_options(spec),
    }
    workers = []
    for entry in spec.host_entries():
        gpu = entry["gpus"] > 0
        options: dict[str, Any] = {
            "host": entry["address"],
            "nthreads": spec.threads_per_worker or 1,
            "memory_limit": spec.memory_limit,
        }
        if gpu:
            # CUDAWorker starts one worker per visible GPU and serves a dashboard
            # on every interface unless told otherwise.
            options.update(spec.spill)
            options["dashboard_address"] = f"{entry['address']}:0"
        else:
            options["n_workers"] = entry["workers"]
        workers.append({"address": entry["address"], "worker_class": GPU_WORKER if gpu
                        else CPU_WORKER, "remote_python": entry["python"], "kwargs": options})
    return {"scheduler": {"address": host, "remote_python": spec.remote_python,
                          "kwargs": scheduler},
            "workers": workers, "connect_options": connect_options(spec)}


def expected_workers(spec: ClusterSpec) -> int:
    """Workers to wait for: each CPU host's count, and at least one per GPU host."""
    return sum(1 if e["gpus"] else e["workers"] for e in spec.host_entries())


def launch(spec: ClusterSpec) -> Launch:
    arguments = ssh_arguments(spec)
    notes = [f"the scheduler runs on {arguments['scheduler']['address']} and listens there only"]
    if "known_hosts" in arguments["connect_options"] and \
            arguments["connect_options"]["known_hosts"] is None:
        notes.append("host keys are NOT checked (ssh.check_host_keys: false)")
    else:
        notes.append("host keys are checked against "
                     + arguments["connect_options"].get("known_hosts", "~/.ssh/known_hosts"))
    if any(w["worker_class"] == GPU_WORKER for w in arguments["workers"]):
        notes.append("GPU hosts run dask-cuda's CUDAWorker: one worker per visible GPU")
    return Launch("distributed.deploy.spec.SpecCluster (as distributed.SSHCluster builds it)",
                  arguments, notes=tuple(notes))


def _process_classes() -> tuple[type, type]:
    from distributed.deploy import ssh

    class BoundedStart:
        """Bounds ``start()`` and stops a launch that hangs (mixed into both classes)."""

        role = "process"

        def __init__(self, *args: Any, startup_timeout: float, launch_token: str,
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.startup_timeout = startup_timeout
            self.launch_token = launch_token

        async def start(self) -> None:
            await _bounded(self, super().start(),  # type: ignore[misc]
                           self.startup_timeout,
                           f"{self.role} on {getattr(self, 'address', '?')}")

    class BoundedScheduler(BoundedStart, ssh.Scheduler):
        role = "scheduler"

    class BoundedWorker(BoundedStart, ssh.Worker):
        role = "workers"

    return BoundedScheduler, BoundedWorker


async def _bounded(process: Any, coroutine: Any, seconds: float, what: str) -> None:
    try:
        await asyncio.wait_for(coroutine, seconds)
    except TimeoutError as error:
        # Closing the connection alone would leave a hung remote process
        # running (no terminal, so no hang-up; OpenSSH ignores signal requests
        # here): stop its process group by the token in its command line.
        await _stop_launch(process)
        raise TimeoutError(f"the {what} did not report an address within {seconds:g} s") \
            from error


async def _stop_launch(process: Any) -> None:
    """Run :func:`_stop_command` on the launch's host: over the launch's own connection,
    or a fresh one when that fails (the cancelled start may have left it unusable)."""
    import asyncssh

    command = _stop_command(process.launch_token)
    connection = getattr(process, "connection", None)
    if connection is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.run(command, check=True), 10)
            return
    with contextlib.suppress(Exception):
        async with asyncssh.connect(process.address, **process.connect_options) as fresh:
            await asyncio.wait_for(fresh.run(command, check=True), 10)


def _stop_command(token: str) -> str:
    """A POSIX shell command that kills the SSH sessions launched with ``token``.

    The whole session, not only the process group: everything the launch
    started (a wrapper script's children too) goes. Three passes over 1.5 s
    also catch a launch that was still starting at the first.
    """
    # "[x]yz" matches "xyz" but not itself: this command must not find itself
    # (or its own session) among the launches to stop.
    pattern = f"suanli-launch=[{token[0]}]{token[1:]}"
    one_pass = (f"for p in $(pgrep -f '{pattern}'); do "
                "s=$(ps -o sid= -p \"$p\" | tr -d ' '); "
                "[ -n \"$s\" ] && [ \"$s\" != \"$me\" ] && pkill -KILL -s \"$s\"; "
                "done 2>/dev/null")
    return (f"me=$(ps -o sid= -p $$ | tr -d ' '); {one_pass}; sleep 0.5; {one_pass}; "
            f"sleep 1; {one_pass}; true")


def _tagged(python: str | None, token: str) -> str:
    # An -X option Python ignores, so a hung launch can be found and stopped.
    return f"{python or sys.executable} -X suanli-launch={token}"


def start(spec: ClusterSpec) -> SpecCluster:
    """Start the scheduler and workers over SSH; a failure says which host and why."""
    import_backend("asyncssh", "ssh")
    from distributed.deploy.spec import SpecCluster

    arguments = ssh_arguments(spec)
    _check_files(arguments["connect_options"])
    timeout = parse_timedelta(spec.startup_timeout)
    scheduler_cls, worker_cls = _process_classes()
    connect = arguments["connect_options"]
    token = uuid.uuid4().hex[:12]
    bounds = {"connect_options": connect, "startup_timeout": timeout, "launch_token": token}
    scheduler = {"cls": scheduler_cls, "options": {
        **arguments["scheduler"], **bounds,
        "remote_python": _tagged(arguments["scheduler"]["remote_python"], token)}}
    workers = {
        f"{w['address']}-{i}": {"cls": worker_cls, "options": {
            **w, **bounds, "remote_python": _tagged(w["remote_python"], token)}}
        for i, w in enumerate(arguments["workers"])
    }
    with _remote_output() as output, worker_settings(spec):
        try:
            return SpecCluster(workers, scheduler, name="suanli-ssh")
        except Exception as error:
            raise ClusterError(_explain(error, output, spec)) from error


def _check_files(connect: dict[str, Any]) -> None:
    """Name a missing key or known-hosts file, rather than let asyncssh fail vaguely."""
    for key in connect.get("client_keys", []):
        if not Path(key).expanduser().is_file():
            raise ClusterSpecError("ssh.client_keys", key, "the path of an existing private key")
    known = connect.get("known_hosts")
    if known is not None and not Path(known).expanduser().is_file():
        raise ClusterSpecError("ssh.known_hosts", known,
                               "the path of an existing known_hosts file")


def _explain(error: BaseException, output: list[str], spec: ClusterSpec) -> str:
    # The deepest cause with something to say tells what went wrong; a
    # cancellation or a bare timeout is only how asyncio ended the wait.
    root: BaseException = error
    current: BaseException | None = error
    while current is not None:
        if str(current) and not isinstance(current, asyncio.CancelledError):
            root = current
        current = current.__cause__ or current.__context__
    text = str(root) or type(root).__name__
    hosts = ", ".join(e["address"] for e in spec.host_entries())
    port = spec.ssh.get("port", 22)
    message = (f"could not start the ssh cluster (scheduler on {scheduler_host(spec)}, "
               f"workers on {hosts}, ssh port {port}): {text}")
    lowered = text.lower()
    if "host key is not trusted" in lowered:
        message += ("; add the host's key to the known_hosts file (ssh-keyscan), or set "
                    "ssh.check_host_keys: false in the profile if you trust the network")
    elif isinstance(root, ConnectionRefusedError) or "connect call failed" in lowered:
        message += "; is sshd running on that host and port?"
    elif "permission denied" in lowered or "invalid private key" in lowered:
        message += "; check ssh.username and ssh.client_keys"
    remote = [line for line in output if line.strip()]
    if remote:
        message += "\nlast output of the remote processes:\n  " + "\n  ".join(remote[-15:])
    return message


@contextlib.contextmanager
def _remote_output() -> Iterator[list[str]]:
    """Collect what the remote processes print while they start.

    distributed logs each line of their stderr at INFO on this logger; keep
    them, without printing, to put in the error when start-up fails.
    """
    logger = logging.getLogger("distributed.deploy.ssh")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect(logging.INFO)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
