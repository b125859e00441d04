"""A real one-node SLURM on 127.0.0.1, for the slurm kind's tests.

munged (with a key made here), slurmctld and slurmd run in the foreground as child
processes, with a ``slurm.conf`` for this machine's cores in a temporary folder, their
own ports, no accounting and no cgroups (``proctrack/linuxproc``), as dask-jobqueue's
CI runs SLURM in containers. Every daemon binds to 127.0.0.1 only
(``CommunicationParameters=NoInAddrAny`` and the node's address). Clients (``sbatch``,
``squeue``, ``scancel``, and dask-jobqueue, which runs them) find it through
``SLURM_CONF``, which :func:`running_slurm` sets for the process and its children.

``EnforcePartLimits=ALL`` makes SLURM refuse at submission a job no partition could
ever run (too much memory, an unknown partition), as sites usually configure it.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PARTITION = "debug"
DOWN_PARTITION = "maintenance"
#: Memory the node offers jobs, in MB (the machine may have more).
NODE_MEMORY_MB = 8192
DAEMONS = ("munged", "slurmctld", "slurmd")


@dataclass(frozen=True)
class SlurmServer:
    conf: Path
    folder: Path
    node: str
    cores: int
    partition: str = PARTITION
    memory_mb: int = NODE_MEMORY_MB

    def command(self, *args: str) -> str:
        """Run a SLURM client command (squeue, scontrol, ...) against this SLURM."""
        done = subprocess.run(list(args), capture_output=True, text=True, check=True,
                              env={**os.environ, "SLURM_CONF": str(self.conf)}, timeout=30)
        return done.stdout

    def jobs(self) -> list[dict[str, str]]:
        """The jobs SLURM knows of now: id, name, state and reason."""
        out = self.command("squeue", "--noheader", "--format=%i|%j|%T|%r")
        return [dict(zip(("id", "name", "state", "reason"), line.split("|"), strict=True))
                for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.folder.glob("*.log")))


def slurm_binaries() -> dict[str, str | None]:
    found = {name: shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None)
        for name in (*DAEMONS, "sbatch", "sinfo", "mungekey")}
    return found


def missing_binaries() -> list[str]:
    return [name for name, path in slurm_binaries().items() if path is None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_slurm(folder: Path, startup_timeout: float = 30.0) -> Iterator[SlurmServer]:
    """Start munged, slurmctld and slurmd with a fresh key and config in ``folder``;
    stop them (and cancel every job) on exit."""
    binaries = slurm_binaries()
    missing = missing_binaries()
    if missing:
        raise FileNotFoundError(f"SLURM is not installed ({', '.join(missing)} missing; "
                                "scripts/test.sh installs slurmctld, slurmd, slurm-client "
                                "and munge)")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # munged's socket folder must not be writable by others
    for part in ("state", "spool"):
        (folder / part).mkdir(exist_ok=True)
    key = folder / "munge.key"
    subprocess.run([str(binaries["mungekey"]), "--create", f"--keyfile={key}"], check=True)
    key.chmod(0o600)
    node = socket.gethostname().split(".")[0]
    cores = os.cpu_count() or 1
    user = getpass.getuser()
    socket_path = folder / "munge.socket"
    conf = folder / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=suanli-test",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        f"SlurmUser={user}",
        f"SlurmdUser={user}",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={socket_path}",
        "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "EnforcePartLimits=ALL",
        "ReturnToService=2",
        "MpiDefault=none",
        "KillWait=5",
        "OverTimeLimit=0",
        "MinJobAge=2",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        f"DefMemPerCPU={NODE_MEMORY_MB // cores}",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cores} RealMemory={NODE_MEMORY_MB} "
        "State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
        # A partition in maintenance: jobs are accepted and wait for ever.
        f"PartitionName={DOWN_PARTITION} Nodes={node} MaxTime=INFINITE State=DOWN",
        "",
    ]))
    environment = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[subprocess.Popen[bytes]] = []
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    server = SlurmServer(conf, folder, node, cores)
    try:
        started.append(_spawn([
            str(binaries["munged"]), "--foreground", "--force", f"--key-file={key}",
            f"--socket={socket_path}", f"--pid-file={folder / 'munged.pid'}",
            f"--log-file={folder / 'munged.log'}", f"--seed-file={folder / 'munge.seed'}"],
            folder / "munged.out", environment))
        _wait_until(lambda: socket_path.exists(), startup_timeout, "munged", server, started)
        started.append(_spawn([str(binaries["slurmctld"]), "-D", "-i", "-f", str(conf)],
                              folder / "slurmctld.out", environment))
        started.append(_spawn([str(binaries["slurmd"]), "-D", "-f", str(conf), "-N", node],
                              folder / "slurmd.out", environment))
        _wait_until(lambda: _node_state(server) in ("idle", "idle*"), startup_timeout,
                    "the node to be idle", server, started)
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.command("scancel", "--full", "--quiet", f"--partition={PARTITION}")
            server.command("scancel", "--full", "--quiet", f"--partition={DOWN_PARTITION}")
            _wait_until(lambda: not server.jobs(), 20, "jobs to end", server, [])
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


def _spawn(command: list[str], log: Path, environment: dict[str, str]
           ) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment,
                                stdin=subprocess.DEVNULL)


def _node_state(server: SlurmServer) -> str:
    try:
        return server.command("sinfo", "--noheader", "--format=%T").strip()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return ""


def _wait_until(condition: object, timeout: float, what: str, server: SlurmServer,
                started: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        dead = [p.args[0] for p in started if p.poll() is not None]  # type: ignore[index]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"SLURM: waited {timeout:g} s for {what}"
                               + (f"; exited: {', '.join(map(str, dead))}" if dead else "")
                               + f"\n{server.logs()}")
        time.sleep(0.2)
