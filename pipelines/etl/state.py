"""A partition's state, read from storage and nothing else.

A partition is **done** when its folder under the output root holds a committed
``etl.json`` (written into the same atomic commit as its data) whose pipeline
fingerprint and input fingerprint match the present ones; **stale** when they do
not (the inputs or the pipeline changed); **failed** when its last attempt left a
failure record (``ROOT/_etl/failed/KEY.json``) and no valid output; **missing**
when it has inputs and no output; **skipped** when it has no input yet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import fsspec

from suanli.datasets import read_with_retries

from .partitions import PartitionTemplate

MANIFEST = "etl.json"
FAILURES = "_etl/failed"
STATES = ("done", "stale", "missing", "failed", "skipped")


@dataclass
class PartitionState:
    """What storage says of one partition."""

    key: str
    state: str
    #: Why, in words: "inputs changed (3 files, was 2)", the failure's message.
    reason: str = ""
    #: The partition's input files now: path, size and a change marker (mtime or ETag).
    inputs: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] | None = None


def fingerprint(value: Any) -> str:
    """A stable hash of a JSON-ready value (a pipeline definition, an input listing)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def list_inputs(pattern: str, storage_options: dict[str, Any] | None = None
                ) -> list[dict[str, Any]]:
    """The files a partition's source pattern names (a folder, such as a Zarr store, by
    its files), each with its size and what changes when it is rewritten; a transient
    storage error is retried (R6)."""
    return read_with_retries(lambda: _listed(pattern, storage_options), what=pattern)


def _listed(pattern: str, storage_options: dict[str, Any] | None) -> list[dict[str, Any]]:
    fs, path = _fresh(pattern, storage_options)
    found = fs.glob(path) if any(c in path for c in "*?[") else \
        ([path] if fs.exists(path) else [])
    files: list[dict[str, Any]] = []
    for match in sorted(found):
        details = fs.find(match, detail=True) if fs.isdir(match) else {match: fs.info(match)}
        for name, info in sorted(details.items()):
            marker = info.get("ETag") or info.get("etag") or info.get("mtime") or \
                info.get("LastModified") or info.get("created")
            files.append({"path": str(name), "size": int(info.get("size") or 0),
                          "marker": str(marker)})
    return files


def partition_state(template: PartitionTemplate, key: str, root: str, pipeline_hash: str,
                    storage_options: dict[str, Any] | None = None,
                    output_format: str = "zarr") -> PartitionState:
    """The state of partition ``key`` under output ``root``, for outputs written in
    ``output_format``."""
    inputs = list_inputs(template.source(key), storage_options)
    manifest = read_manifest(root, template.folder(key), storage_options)
    if manifest is not None:
        if manifest.get("pipeline_hash") != pipeline_hash:
            return PartitionState(key, "stale", "the pipeline or its parameters changed",
                                  inputs, manifest)
        written = manifest.get("format", "zarr")
        if written != output_format:
            return PartitionState(key, "stale", f"written as {written}, asked for "
                                  f"{output_format}", inputs, manifest)
        if manifest.get("inputs_hash") != fingerprint(inputs):
            before = len(manifest.get("inputs", []))
            return PartitionState(key, "stale", f"inputs changed ({len(inputs)} file(s), "
                                  f"{before} when it was written)", inputs, manifest)
        return PartitionState(key, "done", "", inputs, manifest)
    failure = read_failure(root, template.folder(key), storage_options)
    if failure is not None:
        return PartitionState(key, "failed", failure.get("error", ""), inputs)
    if not inputs:
        return PartitionState(key, "skipped", f"no input at {template.source(key)}", inputs)
    return PartitionState(key, "missing", "", inputs)


def _fresh(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    """The filesystem and path of ``url``, its cached listings dropped: other runs write
    the same storage, and an object store's listing cache would hide what they did."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    fs.invalidate_cache()
    return fs, str(path)


def _read_json(url: str, storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    def read() -> dict[str, Any] | None:
        fs, path = _fresh(url, storage_options)
        if not fs.exists(path):
            return None
        with fs.open(path, "rb") as handle:
            loaded: dict[str, Any] = json.loads(handle.read())
        return loaded

    return read_with_retries(read, what=url)


def read_manifest(root: str, folder: str, storage_options: dict[str, Any] | None = None
                  ) -> dict[str, Any] | None:
    """A committed partition's ``etl.json``, or None."""
    return _read_json(f"{root.rstrip('/')}/{folder}/{MANIFEST}", storage_options)


def read_failure(root: str, folder: str, storage_options: dict[str, Any] | None = None
                 ) -> dict[str, Any] | None:
    return _read_json(f"{root.rstrip('/')}/{FAILURES}/{folder}.json", storage_options)


def write_failure(root: str, folder: str, record: dict[str, Any],
                  storage_options: dict[str, Any] | None = None) -> None:
    fs, path = fsspec.core.url_to_fs(f"{root.rstrip('/')}/{FAILURES}/{folder}.json",
                                     **(storage_options or {}))
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "w") as handle:
        handle.write(json.dumps(record, indent=2, default=str))


def clear_failure(root: str, folder: str, storage_options: dict[str, Any] | None = None
                  ) -> None:
    fs, path = fsspec.core.url_to_fs(f"{root.rstrip('/')}/{FAILURES}/{folder}.json",
                                     **(storage_options or {}))
    if fs.exists(path):
        fs.rm(path)


def remove_unfinished_writes(root: str, folder: str,
                             storage_options: dict[str, Any] | None = None) -> list[str]:
    """Remove every staging copy of partition ``folder`` under ``root``: run under the
    root's lease, so no other live run may be writing it, whichever host it ran on (a
    runner that lost its lease can no longer commit)."""
    fs, path = _fresh(root, storage_options)
    removed = fs.glob(f"{path.rstrip('/')}/.{folder}.writing-*")
    for staging in removed:
        fs.rm(staging, recursive=True)
    return [str(p) for p in removed]


def stored_partitions(root: str, storage_options: dict[str, Any] | None = None
                      ) -> list[dict[str, Any]]:
    """Every partition under ``root`` with a committed manifest or a failure record:
    ``{folder, manifest | failure}``, by folder name."""
    fs, path = _fresh(root, storage_options)
    if not fs.exists(path):
        return []
    found: dict[str, dict[str, Any]] = {}
    for manifest in fs.glob(f"{path.rstrip('/')}/*=*/{MANIFEST}"):
        folder = manifest.rstrip("/").split("/")[-2]
        with fs.open(manifest, "rb") as handle:
            found[folder] = {"folder": folder, "manifest": json.loads(handle.read())}
    for failure in fs.glob(f"{path.rstrip('/')}/{FAILURES}/*.json"):
        folder = failure.rsplit("/", 1)[-1].removesuffix(".json")
        if folder not in found:
            with fs.open(failure, "rb") as handle:
                found[folder] = {"folder": folder, "failure": json.loads(handle.read())}
    return [found[k] for k in sorted(found)]
