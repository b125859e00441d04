"""Where data lives: a path, folder, glob or URL, on local disk or object storage (fsspec)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .errors import DatasetError
from .retrying import attempts_note, read_with_retries

GLOB_CHARACTERS = "*?["


@dataclass
class Source:
    """A filesystem (fsspec) and the user's text for what to read from it."""

    uri: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import fsspec.core

        from .storage import protocol_of, require

        require(protocol_of(self.uri) or "file", self.uri)
        try:
            self.fs, self.path = fsspec.core.url_to_fs(self.uri, **self.storage_options)
        except (ImportError, ValueError) as error:
            raise DatasetError(f"cannot reach this location: {error}", path=self.uri) from error

    @property
    def is_local(self) -> bool:
        return "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple)
                          else (self.fs.protocol,))

    def full(self, name: str) -> str:
        """A name as the user would write it (with its protocol, for object storage)."""
        return name if self.is_local else self.fs.unstrip_protocol(name)

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def isdir(self, name: str | None = None) -> bool:
        return bool(self.fs.isdir(name or self.path))

    def files(self, suffixes: Sequence[str]) -> list[str]:
        """The files the source names: itself, a folder's files or a glob's matches."""
        if any(c in self.path for c in GLOB_CHARACTERS):
            found = sorted(self.fs.glob(self.path))
        elif self.fs.isdir(self.path):
            found = sorted(p for p in self.fs.find(self.path) if _matches(p, suffixes))
        elif self.fs.exists(self.path):
            found = [self.path]
        else:
            raise DatasetError("no such file, folder or glob match", path=self.uri)
        found = [p for p in found if not self.fs.isdir(p) and not p.rsplit("/", 1)[-1]
                 .startswith((".", "_"))]
        if not found:
            raise DatasetError(f"no files ending in {', '.join(suffixes)} here", path=self.uri)
        return found

    def open(self, name: str, compression: str | None = None) -> IO[bytes]:
        try:
            handle: IO[bytes] = read_with_retries(
                lambda: self.fs.open(name, "rb", compression=compression), what=self.full(name))
        except (OSError, ValueError) as error:
            raise DatasetError(f"cannot open{attempts_note(error)}: {error}",
                               path=self.full(name)) from error
        return handle

    def describe(self, names: Sequence[str]) -> str:
        return self.full(names[0]) if len(names) == 1 else self.uri


def _matches(name: str, suffixes: Sequence[str]) -> bool:
    lowered = name.lower()
    return any(lowered.endswith(s) for s in suffixes)
