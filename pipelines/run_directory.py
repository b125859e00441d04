"""The run directory: built in a hidden staging folder, moved into place when complete.

A failed run leaves nothing that reads as a result, and never touches an
existing run.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from suanli.datasets import DatasetError, local_output

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
        try:
            self.output = local_output(output, "a run directory")
        except DatasetError as error:
            raise RunOutputError(str(error)) from error
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

    def commit(self) -> Path:
        if self.output.exists():  # an empty directory, checked in __init__
            self.output.rmdir()
        self.staging.rename(self.output)
        self.checkpoint.unlink(missing_ok=True)
        return self.output

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
