"""Outputs that appear complete or not at all: a hidden staging copy, swapped in.

A writer asks :func:`output_for` where to write, fills its staging copy (a
hidden sibling), then commits it. Locally (:class:`LocalOutput`) the commit adds
the manifest and calls :func:`swap_into_place`: the previous output is kept until
the new one is in place, and if a writer dies between the two renames of the swap,
:func:`recover_interrupted_swap` (run by every read and write) puts it back. On
object storage, which has no rename, :class:`~.remote.RemoteOutput` does the same
job by other means.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from suanli.processes import pid_alive

from .errors import DatasetError
from .manifest import write_manifest
from .storage import is_local, local_output


def staging_for(path: str | os.PathLike[str], overwrite: bool) -> tuple[Path, Path]:
    """``(target, staging)`` for a new output at ``path``; refuses to clobber one unasked.

    The staging folder's name carries this host and process, so that the next write
    into the same folder removes what a killed writer left (:func:`remove_abandoned`).
    """
    target = local_output(path)
    recover_interrupted_swap(target)
    if target.exists() and not overwrite:
        raise DatasetError("output exists; pass overwrite=True to replace it", path=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target.parent)
    return target, target.with_name(staging_name(target.name))


_HOST = socket.gethostname().split(".")[0].replace("-", "_")


def staging_name(name: str) -> str:
    """The hidden name an output called ``name`` is written under by this process."""
    return f".{name}.writing-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def abandoned(names: list[str]) -> list[str]:
    """The staging names among ``names`` whose writer, on this host, is dead (a killed
    run or write); live writers' and other hosts' are not."""
    found = []
    for name in names:
        if ".writing-" not in name or not name.startswith("."):
            continue
        host, _, rest = name.rpartition(".writing-")[2].partition("-")
        pid = rest.partition("-")[0]
        if host == _HOST and pid.isdigit() and not pid_alive(int(pid)):
            found.append(name)
    return found


def remove_abandoned(folder: Path) -> list[Path]:
    """Remove the staging folders in ``folder`` whose writer (on this host) is dead."""
    removed = [folder / name for name in abandoned([p.name for p in folder.glob(".*.writing-*")])]
    for staging in removed:
        shutil.rmtree(staging, ignore_errors=True)
    return removed


def recover_interrupted_swap(target: Path) -> None:
    """Put back the previous output if a swap was killed between its two renames."""
    if target.exists():
        return
    retired = sorted(target.parent.glob(f".{target.name}.replaced-*"))
    if retired:
        retired[-1].rename(target)


def swap_into_place(staging: Path, target: Path) -> None:
    """Move a complete ``staging`` output to ``target``, keeping the old one until then."""
    if not target.exists():
        staging.rename(target)
        return
    retired = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex[:8]}")
    target.rename(retired)
    try:
        staging.rename(target)
    except OSError:
        retired.rename(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


class Output(Protocol):
    """An atomic output being written: fill ``staging_location`` (with
    ``storage_options``), then ``commit`` it, or ``discard`` it."""

    storage_options: dict[str, Any]

    @property
    def name(self) -> str: ...

    @property
    def staging_location(self) -> str: ...

    def commit(self, kind: str) -> Path | str: ...

    def discard(self) -> None: ...


@dataclass
class LocalOutput:
    """An output at ``target`` on a local (or shared) filesystem, written via ``staging``."""

    target: Path
    staging: Path
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def staging_location(self) -> str:
        return str(self.staging)

    def commit(self, kind: str) -> Path:
        write_manifest(self.staging, kind)
        swap_into_place(self.staging, self.target)
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def output_for(path: str | os.PathLike[str], *, overwrite: bool,
               storage_options: dict[str, Any] | None = None) -> Output:
    """Where an atomic write of ``path`` goes: a :class:`LocalOutput`, or a
    :class:`~.remote.RemoteOutput` for an object-storage URL."""
    if is_local(path):
        target, staging = staging_for(path, overwrite)
        return LocalOutput(target, staging)
    from .remote import RemoteOutput

    return RemoteOutput.prepare(os.fspath(path), storage_options, overwrite)
