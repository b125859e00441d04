"""Whether a process is running: what ``cluster`` (its records, ``suanli cluster down``)
and ``datasets`` (a killed writer's staging folders) both ask. Imports nothing of
suanli, so the two packages share it without importing each other."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` of this host runs; a zombie (exited, not yet reaped
    by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True
