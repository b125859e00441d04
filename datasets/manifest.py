"""Checksums of every file of an output, so ``datasets.verify`` can prove it is whole.

The manifest (``_suanli-manifest.json`` inside a Zarr store or a Parquet
folder) is written last, into the staging copy, before the output is moved
into place: an output with a manifest was complete when written, and
``verify`` shows whether it still is (no file missing, truncated or altered).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DatasetError

#: The manifest's name: leading ``_`` so that Parquet readers (pyarrow datasets, pandas,
#: Spark, DuckDB's hive reader) skip it in a folder of tables, as they skip ``_SUCCESS``.
MANIFEST = "_suanli-manifest.json"
#: Its earlier name: outputs written with it are still read and verified.
OLD_MANIFEST = "suanli-manifest.json"
MANIFESTS = (MANIFEST, OLD_MANIFEST)
FORMAT = "suanli-manifest/1"


def _local() -> Any:
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem()


def _is_local_fs(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def file_digest(path: str | Path, fs: Any = None) -> str:
    """The file's blake2b digest; a transient storage error is retried (R6)."""
    from .retrying import read_with_retries

    def digest() -> str:
        found = hashlib.blake2b(digest_size=16)
        with (fs or _local()).open(str(path), "rb") as handle:
            while block := handle.read(1 << 20):
                found.update(block)
        return found.hexdigest()

    return str(read_with_retries(digest, what=str(path)))


def file_crc32c(path: str | Path, fs: Any = None) -> str:
    """The file's CRC32C (hex; the checksum S3 and Zarr's chunk codec use), about ten
    times cheaper than :func:`file_digest` where many gigabytes are checked; a
    transient storage error is retried (R6)."""
    import google_crc32c

    from .retrying import read_with_retries

    def checksum() -> str:
        found = google_crc32c.Checksum()
        with (fs or _local()).open(str(path), "rb") as handle:
            while block := handle.read(4 << 20):
                found.update(block)
        return str(found.hexdigest().decode())

    return str(read_with_retries(checksum, what=str(path)))


def files_under(root: str | Path, fs: Any = None) -> list[str]:
    """Every file under ``root`` but the manifest, relative to it, with ``/``."""
    fs = fs or _local()
    base = fs._strip_protocol(str(root)).rstrip("/") + "/"  # local: absolute, as find gives
    found = [path[len(base):] for path in fs.find(str(root)) if path.startswith(base)]
    return sorted(name for name in found if name not in MANIFESTS)


def _hashed(root: str | Path, names: list[str], fs: Any) -> list[str]:
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        return list(pool.map(lambda n: file_digest(f"{root}/{n}", fs), names))


def written_checksums(root: str | Path, fs: Any = None) -> dict[str, str]:
    """The checksums of the committed outputs inside ``root`` (a run's datasets), by
    path relative to it, from their own manifests: nothing is read again."""
    return {name: facts["blake2b"] for name, facts in _nested_entries(root, fs).items()}


def _nested_entries(root: str | Path, fs: Any = None) -> dict[str, dict[str, Any]]:
    """Every file of an output committed inside ``root``, as its own manifest lists it
    (and the manifest file itself, hashed), by path relative to ``root``."""
    fs = fs or _local()
    base = fs._strip_protocol(str(root)).rstrip("/")
    found: dict[str, dict[str, Any]] = {}
    for name in MANIFESTS:
        for path in fs.glob(f"{base}/**/{name}"):
            folder = path[len(base) + 1:].rpartition("/")[0]
            if not folder:
                continue
            inner = read_manifest(f"{base}/{folder}", fs)
            if inner is None:
                continue
            for file, facts in inner["files"].items():
                found[f"{folder}/{file}"] = {"size": facts["size"], "blake2b": facts["blake2b"]}
            found[f"{folder}/{name}"] = {"size": fs.size(path),
                                         "blake2b": file_digest(path, fs)}
    return found


def write_manifest(root: str | Path, kind: str, fs: Any = None) -> dict[str, Any]:
    """Hash every file under ``root`` (in parallel) and write the manifest there.

    The files of an output already committed inside ``root`` (a run's features) are
    taken from its own manifest when their sizes agree, not read again: on object
    storage that would download them. ``fs``: the fsspec filesystem ``root`` is on
    (default: the local one)."""
    fs = fs or _local()
    names = files_under(root, fs)
    known = _nested_entries(root, fs) if not _is_local_fs(fs) else {}
    sizes = {n: fs.size(f"{root}/{n}") for n in names} if known else {}
    fresh = [n for n in names if n not in known or known[n]["size"] != sizes[n]]
    digests = dict(zip(fresh, _hashed(root, fresh, fs), strict=True))
    manifest = {
        "format": FORMAT,
        "kind": kind,
        "files": {n: {"size": sizes[n] if n in sizes else fs.size(f"{root}/{n}"),
                      "blake2b": digests[n] if n in digests else known[n]["blake2b"]}
                  for n in names},
    }
    fs.pipe_file(f"{root}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
    return manifest


def manifest_path(root: str | Path, fs: Any = None) -> str | None:
    """Where ``root``'s manifest is (under its current or its old name), if it has one."""
    fs = fs or _local()
    return next((f"{root}/{name}" for name in MANIFESTS if fs.exists(f"{root}/{name}")),
                None)


def read_manifest(root: str | Path, fs: Any = None) -> dict[str, Any] | None:
    fs = fs or _local()
    path = manifest_path(root, fs)
    if path is None:
        return None
    try:
        manifest: dict[str, Any] = json.loads(fs.cat_file(path))
    except ValueError as error:
        raise DatasetError(f"the manifest is not valid JSON: {error}", path=str(path)) from error
    if manifest.get("format") != FORMAT:
        raise DatasetError(f"unknown manifest format {manifest.get('format')!r}",
                           path=str(path))
    return manifest


@dataclass(frozen=True)
class Problem:
    """One file of an output that is not as written."""

    file: str
    what: str  # "missing", "truncated", "changed", "unexpected"
    variable: str | None = None
    chunk: tuple[int, ...] | None = None

    def __str__(self) -> str:
        where = ""
        if self.variable is not None:
            where = f" (variable {self.variable!r}" + (
                f", chunk {self.chunk})" if self.chunk is not None else ")")
        return f"{self.file}: {self.what}{where}"


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: ``ok`` when every file is as written."""

    path: str
    files_checked: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def zarr_location(relative: str) -> tuple[str | None, tuple[int, ...] | None]:
    """The variable and chunk index a Zarr file holds: ``signal/c/0/2/0`` -> (signal, (0, 2, 0))."""
    parts = relative.split("/")
    if len(parts) >= 2 and parts[1] == "c":  # Zarr v3 default chunk keys
        try:
            return parts[0], tuple(int(p) for p in parts[2:])
        except ValueError:
            return parts[0], None
    if len(parts) == 2 and all(p.isdigit() for p in parts[1].split(".")):  # Zarr v2
        return parts[0], tuple(int(p) for p in parts[1].split("."))
    return (parts[0] if len(parts) > 1 else None), None


def verify(path: str | os.PathLike[str], *, checksums: bool = True,
           storage_options: dict[str, Any] | None = None) -> Verification:
    """Check an output against its manifest: every file present, same size and content.

    ``path`` is local or any fsspec URL (``s3://...``, with ``storage_options``).
    With ``checksums=False`` only presence and sizes are checked (fast).
    Raises DatasetError when there is no manifest to check against.
    """
    import fsspec.core

    from .remote import recover_interrupted_commit

    fs, root = fsspec.core.url_to_fs(os.fspath(path), **(storage_options or {}))
    recover_interrupted_commit(fs, root)
    if not fs.exists(root):
        raise DatasetError("no such output", path=os.fspath(path))
    manifest = read_manifest(root, fs) if fs.isdir(root) else None
    if manifest is None:
        raise DatasetError(f"no {MANIFEST}: this output was not written by suanli (or its "
                           "write never finished), so it cannot be verified",
                           path=os.fspath(path))
    expected: dict[str, dict[str, Any]] = manifest["files"]
    present = set(files_under(root, fs))
    problems: list[Problem] = []
    to_hash = []
    for name, facts in expected.items():
        variable, chunk = zarr_location(name) if manifest["kind"] == "zarr" else (None, None)
        if name not in present:
            problems.append(Problem(name, "missing", variable, chunk))
        elif fs.size(f"{root}/{name}") != facts["size"]:
            problems.append(Problem(name, "truncated or extended", variable, chunk))
        elif checksums:
            to_hash.append((name, facts, variable, chunk))
    digests = _hashed(root, [item[0] for item in to_hash], fs)
    for (name, facts, variable, chunk), digest in zip(to_hash, digests, strict=True):
        if digest != facts["blake2b"]:
            problems.append(Problem(name, "content changed", variable, chunk))
    for name in sorted(present - set(expected)):
        problems.append(Problem(name, "not in the manifest"))
    return Verification(os.fspath(path), len(expected), tuple(problems))
