"""The run directory: built in a hidden staging folder, moved into place when complete.

A failed run leaves nothing that reads as a result, and never touches an
existing run. An object-storage output (``s3://bucket/runs/x``) is built in a
local staging folder and published with the datasets' atomic commit for object
storage (:mod:`suanli.datasets.remote`), with a checksum manifest of its own.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from suanli.datasets import DatasetError, is_local, local_output

from .errors import RunOutputError


def default_output(pipeline: str, root: str | Path = "runs") -> Path:
    """``runs/PIPELINE-YYYYmmdd-HHMMSS`` (UTC), unique within the second."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{pipeline}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{pipeline}-{stamp}-{suffix}"
    return path


class RunDirectory:
    """Where one run writes; :meth:`commit` publishes it, :meth:`discard` removes it."""

    def __init__(self, output: str | Path) -> None:
        self.remote: Any = None
        if not is_local(output):
            self._prepare_remote(str(output))
            return
        self.output = local_output(output)
        if self.output.exists():
            if not self.output.is_dir():
                raise RunOutputError(f"output {str(self.output)!r} is a file, not a directory")
            if (self.output / "manifest.json").exists():
                raise RunOutputError(
                    f"output directory {str(self.output)!r} holds another run (it has a "
                    f"manifest.json); choose a new --output or remove that run first")
            if any(self.output.iterdir()):
                raise RunOutputError(f"output directory {str(self.output)!r} is not empty; "
                                     f"choose a new or empty directory")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.staging = self.output.with_name(f".{self.output.name}.partial-{uuid.uuid4().hex[:8]}")
        self.staging.mkdir()
        #: Training state, beside the output rather than in staging: a failed run
        #: keeps it, and rerunning into the same output resumes from it.
        self.checkpoint = self.output.with_name(f".{self.output.name}.checkpoint.npz")

    def _prepare_remote(self, url: str) -> None:
        from suanli.datasets.remote import RemoteOutput

        try:
            self.remote = RemoteOutput.prepare(url, None, overwrite=False)
        except DatasetError as error:
            raise RunOutputError(f"output {url!r} holds something already (a run?); choose "
                                 f"a new --output or remove it first ({error})") from error
        self.staging = Path(tempfile.mkdtemp(prefix="suanli-run-"))
        # Beside nothing remote can be resumed from: a stable local place per URL.
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        checkpoints = Path(tempfile.gettempdir()) / "suanli-checkpoints"
        checkpoints.mkdir(exist_ok=True)
        self.checkpoint = checkpoints / f"{digest}.checkpoint.npz"

    def path(self, relative: str) -> Path:
        """A path inside the run (in staging until committed)."""
        target = self.staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def checksums(self) -> dict[str, str]:
        """SHA-256 of every file written so far, by path relative to the run."""
        sums = {}
        for file in sorted(p for p in self.staging.rglob("*") if p.is_file()):
            digest = hashlib.sha256()
            with file.open("rb") as handle:
                for piece in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(piece)
            sums[file.relative_to(self.staging).as_posix()] = digest.hexdigest()
        return sums

    def commit(self) -> Path | str:
        """Publish the run; returns where it is (a Path, or the URL)."""
        if self.remote is not None:
            for file in sorted(p for p in self.staging.rglob("*") if p.is_file()):
                relative = file.relative_to(self.staging).as_posix()
                self.remote.fs.put_file(str(file), f"{self.remote.staging}/{relative}")
            url: str = self.remote.commit("run")
            shutil.rmtree(self.staging, ignore_errors=True)
            self.checkpoint.unlink(missing_ok=True)
            return url
        if self.output.exists():  # an empty directory, checked in __init__
            self.output.rmdir()
        self.staging.rename(self.output)
        self.checkpoint.unlink(missing_ok=True)
        return self.output

    def published(self, final: Path | str, path: Path) -> Path | str:
        """Where ``path`` (inside staging) is once the run is published at ``final``."""
        relative = path.relative_to(self.staging)
        return final / relative if isinstance(final, Path) else f"{final}/{relative.as_posix()}"

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.remote is not None:
            self.remote.discard()
