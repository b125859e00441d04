"""The run directory: built in a hidden staging folder, published whole when complete.

The same atomic output as every dataset suanli writes
(:func:`suanli.datasets.output_for`): a failed run leaves nothing that reads as a
result and never touches an existing run, and the published directory carries
the datasets' checksum manifest, so ``suanli datasets verify RUN`` proves it
whole. An object-storage output (``s3://bucket/runs/x``) is built in a local
folder and uploaded into the output's staging prefix before the commit; its
datasets (features) are written by the workers straight into that prefix
(:meth:`RunDirectory.location`), since a worker on another host cannot reach the
client's folder.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from suanli.datasets import (
    DatasetError,
    file_digest,
    is_local,
    local_output,
    output_for,
    written_checksums,
)

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

    def __init__(self, output: str | Path, *, replace: bool = False) -> None:
        """``replace``: publish over whatever ``output`` holds (an ETL partition being
        rerun), keeping it until the commit; by default an occupied output is refused."""
        self.remote = not is_local(output)
        if self.remote:
            self._output = _remote_output(str(output), replace)
            self.staging = Path(tempfile.mkdtemp(prefix="suanli-run-"))
            # Nothing remote can be resumed from: a stable local place per URL.
            digest = hashlib.sha256(str(output).encode()).hexdigest()[:16]
            checkpoints = Path(tempfile.gettempdir()) / "suanli-checkpoints"
            checkpoints.mkdir(exist_ok=True)
            self.checkpoint = checkpoints / f"{digest}.checkpoint.npz"
            return
        target = local_output(output)
        if not replace:
            _check_local_target(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        # An empty directory the user made for the run is replaced when it commits.
        self._output = output_for(target, overwrite=target.exists())
        self.staging = Path(self._output.staging_location)
        self.staging.mkdir()
        #: Training state, beside the output rather than in staging: a failed run
        #: keeps it, and rerunning into the same output resumes from it.
        self.checkpoint = target.with_name(f".{target.name}.checkpoint.npz")

    def path(self, relative: str) -> Path:
        """A path inside the run (in staging until committed)."""
        target = self.staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def location(self, relative: str) -> Path | str:
        """Where the workers write a dataset inside the run: a path in the local staging
        folder, or, for an object-storage output, a URL in its staging prefix."""
        if self.remote:
            return f"{self._output.staging_location}/{relative}"
        return self.path(relative)

    def checksums(self) -> dict[str, str]:
        """The checksum (as the datasets' manifests have them) of every file written so
        far, by path relative to the run; datasets written to object storage are taken
        from their own manifests, not downloaded again."""
        found = {file.relative_to(self.staging).as_posix(): file_digest(file)
                 for file in sorted(p for p in self.staging.rglob("*") if p.is_file())}
        if self.remote:
            found.update(written_checksums(self._output.staging, self._output.fs))
        return dict(sorted(found.items()))

    def commit(self) -> Path | str:
        """Publish the run; returns where it is (a Path, or the URL)."""
        if self.remote:
            fs: Any = self._output.fs
            for file in sorted(p for p in self.staging.rglob("*") if p.is_file()):
                relative = file.relative_to(self.staging).as_posix()
                fs.put_file(str(file), f"{self._output.staging}/{relative}")
        final = self._output.commit("run")
        if self.remote:
            shutil.rmtree(self.staging, ignore_errors=True)
        self.checkpoint.unlink(missing_ok=True)
        return final

    def published(self, final: Path | str, path: Path | str) -> Path | str:
        """Where ``path`` (inside staging, or its object-storage prefix) is once the run
        is published at ``final``."""
        if isinstance(path, str):
            relative = path.removeprefix(f"{self._output.staging_location}/")
            return f"{final}/{relative}"
        local = path.relative_to(self.staging)
        return final / local if isinstance(final, Path) else f"{final}/{local.as_posix()}"

    def discard(self) -> None:
        if self.remote:
            shutil.rmtree(self.staging, ignore_errors=True)
        self._output.discard()


def _check_local_target(target: Path) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise RunOutputError(f"output {str(target)!r} is a file, not a directory")
    if (target / "manifest.json").exists():
        raise RunOutputError(
            f"output directory {str(target)!r} holds another run (it has a manifest.json); "
            f"choose a new --output or remove that run first")
    if any(target.iterdir()):
        raise RunOutputError(f"output directory {str(target)!r} is not empty; "
                             f"choose a new or empty directory")


def _remote_output(url: str, replace: bool = False) -> Any:
    try:
        return output_for(url, overwrite=replace)
    except DatasetError as error:
        raise RunOutputError(f"output {url!r} holds something already (a run?); choose "
                             f"a new --output or remove it first ({error})") from error
