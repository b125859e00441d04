"""Fixtures for the cluster tests: a real sshd on loopback (loopback_sshd.py) and a real
one-node SLURM on 127.0.0.1 (loopback_slurm.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback_slurm import SlurmServer, missing_binaries, running_slurm
from loopback_sshd import SSHServer, running_sshd, sshd_binary


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    if sshd_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("sshd is not installed; scripts/test.sh installs openssh-server")
        pytest.skip("sshd is not installed (scripts/test.sh installs openssh-server)")
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmServer]:
    """A one-node SLURM on 127.0.0.1 (see loopback_slurm.py), for the whole session."""
    missing = missing_binaries()
    if missing:
        if os.environ.get("CI") or shutil.which("apt-get"):
            pytest.fail(f"SLURM is not installed ({', '.join(missing)} missing); "
                        "scripts/test.sh installs it with apt-get")
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing) and there is no "
                    "apt-get here to install it (scripts/test.sh does where there is)")
    # A short path: munged's socket lives in it (Unix socket paths end at 108 bytes).
    with tempfile.TemporaryDirectory(prefix="suanli-slurm-") as folder, \
            running_slurm(Path(folder)) as server:
        yield server
