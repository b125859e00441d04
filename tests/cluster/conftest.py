"""Fixtures for the cluster tests: a real sshd on loopback (see loopback_sshd.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from loopback_sshd import SSHServer, running_sshd, sshd_binary


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    if sshd_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("sshd is not installed; scripts/test.sh installs openssh-server")
        pytest.skip("sshd is not installed (scripts/test.sh installs openssh-server)")
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
