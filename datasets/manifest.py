"""Checksums of every file of an output, so ``datasets.verify`` can prove it is whole.

The manifest (``suanli-manifest.json`` inside a Zarr store or a Parquet
folder) is written last, into the staging copy, before the output is moved
into place: an output with a manifest was complete when written, and
``verify`` shows whether it still is (no file missing, truncated or altered).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DatasetError

MANIFEST = "suanli-manifest.json"
FORMAT = "suanli-manifest/1"


def file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[str]:
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            relative = os.path.relpath(os.path.join(folder, name), root)
            if relative != MANIFEST:
                found.append(relative.replace(os.sep, "/"))
    return sorted(found)


def write_manifest(root: Path, kind: str) -> dict[str, Any]:
    """Hash every file under ``root`` (in parallel) and write the manifest there."""
    names = _files(root)
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        digests = list(pool.map(lambda n: file_digest(root / n), names))
    manifest = {
        "format": FORMAT,
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {n: {"size": (root / n).stat().st_size, "blake2b": d}
                  for n, d in zip(names, digests, strict=True)},
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(root: Path) -> dict[str, Any] | None:
    path = root / MANIFEST
    if not path.exists():
        return None
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
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


def verify(path: str | os.PathLike[str], *, checksums: bool = True) -> Verification:
    """Check an output against its manifest: every file present, same size and content.

    With ``checksums=False`` only presence and sizes are checked (fast).
    Raises DatasetError when there is no manifest to check against.
    """
    root = Path(path)
    if not root.exists():
        raise DatasetError("no such output", path=str(root))
    manifest = read_manifest(root) if root.is_dir() else None
    if manifest is None:
        raise DatasetError(f"no {MANIFEST}: this output was not written by suanli (or its "
                           "write never finished), so it cannot be verified", path=str(root))
    expected: dict[str, dict[str, Any]] = manifest["files"]
    present = set(_files(root))
    problems: list[Problem] = []
    to_hash = []
    for name, facts in expected.items():
        variable, chunk = zarr_location(name) if manifest["kind"] == "zarr" else (None, None)
        if name not in present:
            problems.append(Problem(name, "missing", variable, chunk))
        elif (root / name).stat().st_size != facts["size"]:
            problems.append(Problem(name, "truncated or extended", variable, chunk))
        elif checksums:
            to_hash.append((name, facts, variable, chunk))
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        digests = list(pool.map(lambda item: file_digest(root / item[0]), to_hash))
    for (name, facts, variable, chunk), digest in zip(to_hash, digests, strict=True):
        if digest != facts["blake2b"]:
            problems.append(Problem(name, "content changed", variable, chunk))
    for name in sorted(present - set(expected)):
        problems.append(Problem(name, "not in the manifest"))
    return Verification(str(root), len(expected), tuple(problems))
