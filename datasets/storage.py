"""Which locations suanli writes, and which optional package a format or protocol needs.

``pathlib.Path("s3://bucket/x.zarr")`` is the local path ``s3:/bucket/x.zarr``:
local writers take their path through :func:`local_output`, so a URL is written
where it says (by :mod:`.remote`), never turned into a local folder. Readers call
:func:`require`, so a missing optional package names the extra that installs it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DatasetError

LOCAL_PROTOCOLS = (None, "file", "local")

#: What each optional format or protocol imports, and the extra of suanli that installs it.
EXTRAS = {"netcdf": (("h5netcdf", "h5py"), "netcdf"), "s3": (("s3fs",), "s3"),
          "s3a": (("s3fs",), "s3"), "gs": (("gcsfs",), "gcs"), "gcs": (("gcsfs",), "gcs")}


def require(need: str, path: str) -> None:
    """Import the optional package behind ``need`` (a format or protocol in
    :data:`EXTRAS`), or raise a DatasetError naming the extra that installs it."""
    import importlib

    if need not in EXTRAS:
        return
    modules, extra = EXTRAS[need]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise DatasetError(f"{need} needs the {module} package, which is not installed "
                               f"here: pip install \"suanli[{extra}]\" ({error})",
                               path=path) from error


def protocol_of(path: str | os.PathLike[str]) -> str | None:
    """``"s3"`` for ``s3://bucket/key``; None for a plain local path."""
    from fsspec.core import split_protocol

    return split_protocol(os.fspath(path))[0]


def is_local(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is on the local (or a mounted shared) filesystem."""
    return protocol_of(path) in LOCAL_PROTOCOLS


def local_output(path: str | os.PathLike[str]) -> Path:
    """``path`` (a plain path or a ``file://`` URL) as a local Path; a DatasetError for
    any other URL, which the local writers must never see (atomic.output_for sends
    those to remote.RemoteOutput)."""
    text = os.fspath(path)
    protocol = protocol_of(text)
    if not is_local(text):
        raise DatasetError(f"a local path is needed here, not a {protocol}:// URL",
                           path=text)
    if protocol is not None:
        from fsspec.core import strip_protocol

        text = strip_protocol(text)
    return Path(text)
