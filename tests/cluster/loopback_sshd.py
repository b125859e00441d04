"""A real OpenSSH server on loopback addresses, for the ssh kind's tests and benchmark.

The daemon listens on 127.0.0.1-127.0.0.4 only (Linux routes all of 127/8 to
the loopback interface), so the scheduler and the workers live on different
"hosts" while no traffic leaves the machine. 127.0.0.4 is left out of the
known-hosts file: it plays a host whose key nobody has accepted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
UNKNOWN_HOST = "127.0.0.4"


@dataclass(frozen=True)
class SSHServer:
    port: int
    client_key: Path
    known_hosts: Path
    log: Path
    #: Served by this sshd, but absent from ``known_hosts``.
    unknown_host: str = UNKNOWN_HOST

    @staticmethod
    def free_port() -> int:
        """A port on 127.0.0.1 where nothing listens."""
        return free_port()

    def ssh_options(self, **changes: object) -> dict[str, object]:
        """A profile's ``ssh`` mapping for this server."""
        return {"port": self.port, "client_keys": [str(self.client_key)],
                "known_hosts": str(self.known_hosts), "connect_timeout": "5s", **changes}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def sshd_binary() -> str | None:
    return shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if Path(p).exists()), None)


@contextlib.contextmanager
def running_sshd(folder: Path) -> Iterator[SSHServer]:
    """Start sshd with fresh keys in ``folder``; stop it on exit."""
    binary = sshd_binary()
    if binary is None:
        raise FileNotFoundError("sshd is not installed (scripts/test.sh installs openssh-server)")
    folder.chmod(0o700)
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.run([*keygen, "-f", str(folder / "host_key")], check=True)
    subprocess.run([*keygen, "-f", str(folder / "client_key")], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    host_public = (folder / "host_key.pub").read_text().split()[:2]
    port = free_port()
    (folder / "known_hosts").write_text(
        "".join(f"[{h}]:{port} {' '.join(host_public)}\n" for h in HOSTS))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        *(f"ListenAddress {h}" for h in (*HOSTS, UNKNOWN_HOST)),
        f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        f"PidFile {folder / 'sshd.pid'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "MaxStartups 50",
        "MaxSessions 50",
        "LogLevel ERROR",
        "",
    ]))
    log = folder / "sshd.log"
    daemon = subprocess.Popen([binary, "-D", "-f", str(config), "-E", str(log)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {log.read_text()}") from None
                time.sleep(0.05)
        yield SSHServer(port, folder / "client_key", folder / "known_hosts", log)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
