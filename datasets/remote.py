"""Atomic outputs on object storage (``s3://``, ``gs://``, any fsspec URL).

Object stores have no rename, so the local swap (:mod:`.atomic`) cannot work there.
A write goes to a hidden sibling prefix, ``.NAME.writing-HOST-PID-ID``, and gets
its manifest there (the next write beside it removes one whose writer died).
The commit then writes a record, ``.NAME.committing``, naming that prefix;
removes the previous output; copies the new one in (server-side), its manifest
last; and removes the staging copy and then the record. Whoever next reads,
writes or verifies the output and finds the record finishes the commit first
(:func:`recover_interrupted_commit`). So a write killed before its commit
leaves the previous output as it was (and no readable partial one); a commit
killed part-way ends, at the next touch, as the new output, complete; and until
then the target has no manifest, which suanli's readers and ``verify`` take as
"not written".
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from .atomic import abandoned, staging_name
from .errors import DatasetError
from .manifest import MANIFEST, files_under, write_manifest

RECORD_SUFFIX = ".committing"


def _parent_and_name(path: str) -> tuple[str, str]:
    parent, _, name = path.rstrip("/").rpartition("/")
    return parent, name


def commit_record(path: str) -> str:
    parent, name = _parent_and_name(path)
    return f"{parent}/.{name}{RECORD_SUFFIX}"


@dataclass
class RemoteOutput:
    """An output at ``path`` on filesystem ``fs`` being written via ``staging``."""

    fs: Any
    path: str
    staging: str
    url: str
    storage_options: dict[str, Any]

    @classmethod
    def prepare(cls, url: str, storage_options: dict[str, Any] | None,
                overwrite: bool) -> RemoteOutput:
        import fsspec.core
        from fsspec.config import apply_config

        from .storage import protocol_of, require

        require(protocol_of(url) or "file", url)
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        path = path.rstrip("/")
        recover_interrupted_commit(fs, path)
        if fs.exists(path) and not overwrite:
            raise DatasetError("output exists; pass overwrite=True to replace it", path=url)
        parent, name = _parent_and_name(path)
        remove_abandoned_remote(fs, parent)
        # The workers write the data: they get the options this process's fsspec
        # config (~/.config/fsspec, FSSPEC_S3_*) added, so they write where it would.
        options = apply_config(type(fs), dict(storage_options or {}))
        return cls(fs, path, f"{parent}/{staging_name(name)}", url, options)

    @property
    def name(self) -> str:
        return _parent_and_name(self.path)[1]

    @property
    def staging_location(self) -> str:
        return str(self.fs.unstrip_protocol(self.staging))

    def commit(self, kind: str) -> str:
        """Add the manifest to the staging copy and make it the output."""
        write_manifest(self.staging, kind, self.fs)
        self.fs.pipe_file(commit_record(self.path),
                          json.dumps({"staging": self.staging}).encode())
        finish_commit(self.fs, self.path, self.staging)
        return self.url

    def discard(self) -> None:
        """Remove the staging copy, unless a commit of it began: then the next reader
        or writer finishes that commit from it."""
        self.fs.invalidate_cache(_parent_and_name(self.path)[0])  # listings are stale
        if self.fs.exists(commit_record(self.path)):
            return
        if self.fs.exists(self.staging):
            self.fs.rm(self.staging, recursive=True)


def remove_abandoned_remote(fs: Any, parent: str) -> list[str]:
    """Remove the staging prefixes under ``parent`` whose writer (on this host) is dead,
    unless a commit of one began (the next reader finishes that one instead)."""
    try:
        names = [entry.rstrip("/").rpartition("/")[2] for entry in fs.ls(parent, detail=False)]
    except FileNotFoundError:
        return []
    committing = set()
    for name in names:
        if name.endswith(RECORD_SUFFIX):
            with contextlib.suppress(OSError, ValueError, KeyError):
                committing.add(json.loads(fs.cat_file(f"{parent}/{name}"))["staging"])
    removed = [f"{parent}/{name}" for name in abandoned(names)
               if f"{parent}/{name}" not in committing]
    for staging in removed:
        fs.rm(staging, recursive=True)
    fs.invalidate_cache(parent)  # the listing would hide what is written next
    return removed


def finish_commit(fs: Any, path: str, staging: str) -> None:
    """Replace ``path`` by the complete ``staging`` copy; safe to run again after a kill."""
    if fs.exists(path):
        fs.rm(path, recursive=True)
    for name in [*files_under(staging, fs), MANIFEST]:  # the manifest last
        fs.copy(f"{staging}/{name}", f"{path}/{name}")
    fs.rm(staging, recursive=True)
    fs.rm(commit_record(path))
    fs.invalidate_cache()


def recover_interrupted_commit(fs: Any, path: str) -> None:
    """Finish a commit that was killed part-way (its record is still there)."""
    record = commit_record(path.rstrip("/"))
    if not fs.exists(record):
        return
    try:
        staging = json.loads(fs.cat_file(record))["staging"]
    except (ValueError, KeyError) as error:
        raise DatasetError(f"the commit record {record} is unreadable ({error}); remove "
                           f"it and write the output again", path=path) from error
    if fs.exists(f"{staging}/{MANIFEST}"):
        finish_commit(fs, path.rstrip("/"), staging)
    else:  # the staging copy was already moved in and removed: only the record is left
        fs.rm(record)
