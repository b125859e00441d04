"""Reading Zarr stores with chunk checks, and writing them atomically with a manifest.

A write goes to a hidden sibling directory, gets a checksum on every chunk
(Zarr's crc32c codec) and a manifest of every file, and is moved into place
only when complete: a failed or killed write never leaves a readable partial
store and never touches the previous good one.

Reads go through :class:`CheckedChunks`, so a chunk that cannot be decoded
(truncated, bit-flipped) or that the manifest lists but is gone raises a
DatasetError naming the store, the variable and the chunk, instead of a codec
traceback or, worse, silent fill values.
"""

from __future__ import annotations

import itertools
import json
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from .atomic import Output, output_for, recover_interrupted_swap
from .compute import compute
from .errors import DatasetError
from .manifest import read_manifest, zarr_location
from .retrying import attempts_note, read_with_retries, transient

# What Zarr warns of in the stores suanli writes is deliberate: text as zarr-python's
# FixedLengthUTF32 (see _zarr_ready), consolidated metadata (see prepare_zarr), the
# manifest beside the arrays. Filtered for the whole process, by message, once: the
# warnings come wherever such a store is written or read (worker processes, the ETL's
# partition threads), and warnings.catch_warnings is not thread-safe.
for _deliberate in (r"The data type \(FixedLengthUTF32\(.* does not have a Zarr V3 specification",
                    "Consolidated metadata is currently not part",
                    r".*suanli-manifest\.json.*"):
    warnings.filterwarnings("ignore", message=_deliberate)


def open_zarr(path: str | Path) -> xr.Dataset:
    """Open a Zarr store (v2 or v3) lazily, every chunk read checked."""
    store = Path(path)
    recover_interrupted_swap(store)
    if not store.exists():
        raise DatasetError("no such Zarr store", path=str(path))
    consolidated = has_consolidated_metadata(
        lambda name: (store / name).read_bytes() if (store / name).exists() else None)
    def opened() -> xr.Dataset:
        ds = xr.open_zarr(store, consolidated=consolidated, chunks={})
        return _checked(ds, store, read_manifest(store))

    try:
        return read_with_retries(opened, what=str(path))
    except DatasetError:
        raise
    except Exception as error:
        raise DatasetError(f"cannot open as Zarr{attempts_note(error)}: {error}",
                           path=str(path)) from error


def has_consolidated_metadata(read: Callable[[str], bytes | None]) -> bool:
    """Whether a store (read by key; None for a missing key) has consolidated metadata:
    Zarr v2's ``.zmetadata``, or v3's inside the root ``zarr.json`` (stores written
    elsewhere often have none; opening them as consolidated would warn and fall back)."""
    if read(".zmetadata") is not None:
        return True
    root = read("zarr.json")
    return root is not None and json.loads(root).get("consolidated_metadata") is not None


def _checked(ds: xr.Dataset, store: Path, manifest: dict[str, Any] | None) -> xr.Dataset:
    import zarr

    group = zarr.open_group(store, mode="r")
    chunk_files: dict[str, set[str]] = {}
    if manifest is not None:
        for file_name in manifest["files"]:
            owner, chunk = zarr_location(file_name)
            if owner is not None and chunk is not None:
                chunk_files.setdefault(owner, set()).add(file_name)
    replaced = {}
    for name, data_array in ds.data_vars.items():
        variable = data_array.variable
        encoding = variable.encoding
        plain = (variable.dtype.kind in "fiub" and "scale_factor" not in encoding
                 and "add_offset" not in encoding and "units" not in encoding
                 and variable.ndim > 0)
        if not plain:
            continue  # small or CF-encoded variables: xarray's own reader
        array = group[str(name)]
        expected = chunk_files.get(str(name), set()) if manifest is not None else None
        checked = CheckedChunks(array, str(store), str(name), expected)
        data = da.from_array(checked, chunks=variable.data.chunks, lock=False,
                             name=f"zarr-checked-{uuid.uuid4().hex[:8]}-{name}",
                             meta=np.empty((0,) * variable.ndim, dtype=variable.dtype))
        replaced[name] = data_array.copy(data=data)
    return ds.assign(replaced) if replaced else ds


class CheckedChunks:
    """A Zarr array whose reads name the store, variable and chunk when they fail."""

    def __init__(self, array: Any, store: str, variable: str,
                 expected: set[str] | None) -> None:
        self.array = array
        self.store = store
        self.variable = variable
        self.expected = expected
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self.ndim = len(self.shape)
        self.chunk_shape = tuple(array.chunks)

    def _chunks_of(self, key: tuple[Any, ...]) -> list[tuple[int, ...]]:
        ranges = []
        for axis, part in enumerate(key):
            if isinstance(part, (int, np.integer)):
                # Dask fuses an integer selection (isel) into the read.
                index = int(part) % self.shape[axis]
                part = slice(index, index + 1)
            elif not isinstance(part, slice):
                part = slice(None)  # anything else: assume every chunk on this axis
            start, stop, _ = part.indices(self.shape[axis])
            size = self.chunk_shape[axis]
            ranges.append(range(start // size, max(start, stop - 1) // size + 1))
        return list(itertools.product(*ranges))

    def __getitem__(self, key: tuple[Any, ...]) -> np.ndarray:
        key = tuple(key) + (slice(None),) * (self.ndim - len(tuple(key)))
        chunks = self._chunks_of(key)
        if self.expected is not None:
            for chunk in chunks:
                name = f"{self.variable}/{self.array.metadata.encode_chunk_key(chunk)}"
                if name not in self.expected or not (Path(self.store) / name).exists():
                    raise DatasetError(
                        "a chunk the store's manifest lists is missing (it would read as "
                        "fill values); rewrite the output or restore the file",
                        path=self.store, variable=self.variable, chunk=chunk)
        one = chunks[0] if len(chunks) == 1 else None
        try:
            return np.asarray(read_with_retries(
                lambda: self.array[key],
                what=f"{self.store}, variable {self.variable!r}, chunk {one or chunks}"))
        except Exception as error:
            cause = ("the storage kept failing" if transient(error) else
                     "the file may be truncated or corrupted: run datasets.verify on the store")
            raise DatasetError(f"cannot read the chunk{attempts_note(error)} "
                               f"({type(error).__name__}: {error}); {cause}",
                               path=self.store, variable=self.variable, chunk=one) from error


def write_zarr(ds: xr.Dataset, path: str | Path, *, overwrite: bool = False,
               progress: bool = False, storage_options: dict[str, Any] | None = None
               ) -> Path | str:
    """Write ``ds`` to ``path`` as a Zarr v3 store, atomically, with a manifest.

    Parameters
    ----------
    overwrite
        Replace an existing store; without it an existing ``path`` is an error.
    progress
        Show progress while the chunks are computed and written.
    storage_options
        For an object-storage URL: fsspec's options (credentials, endpoint).
    """
    return prepare_zarr(ds, path, overwrite=overwrite,
                        storage_options=storage_options).complete(progress=progress)


@dataclass
class PendingWrite:
    """A prepared atomic write: compute ``delayed`` (with other work, if wished),
    then ``commit()``; ``discard()`` removes the staging copy (safe after commit)."""

    delayed: Any
    output: Output
    #: What the manifest records the output as.
    kind: str = "zarr"

    def commit(self) -> Path | str:
        return self.output.commit(self.kind)

    def complete(self, *, progress: bool = False) -> Path | str:
        """Compute the write on its own and commit it; the staging copy goes either way."""
        try:
            compute(self.delayed, progress=progress, label=f"writing {self.output.name}")
            return self.commit()
        finally:
            self.discard()

    def discard(self) -> None:
        self.output.discard()


def prepare_zarr(ds: xr.Dataset, path: str | Path, *, overwrite: bool = False,
                 storage_options: dict[str, Any] | None = None) -> PendingWrite:
    """Set up an atomic Zarr write of ``ds`` to ``path`` without computing anything."""
    output = output_for(path, overwrite=overwrite, storage_options=storage_options)
    ready = _zarr_ready(ds)
    try:
        # Every chunk is written, even one that is all fill value, so a chunk that is
        # absent later is known to be lost rather than empty. Consolidated metadata:
        # plain xr.open_zarr opens the store without warnings, and never lists the
        # store, so it never meets the manifest file beside the arrays.
        delayed = ready.to_zarr(output.staging_location, mode="w-", compute=False,
                                consolidated=True, zarr_format=3,
                                write_empty_chunks=True, encoding=_checksummed(ready),
                                storage_options=output.storage_options or None)
    except BaseException:
        output.discard()
        raise
    return PendingWrite(delayed, output)


def _checksummed(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Encoding that adds a crc32c checksum to every chunk of numeric variables."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    encoding = {}
    for name, variable in ds.variables.items():
        if variable.dtype.kind in "fiub":
            encoding[str(name)] = {"compressors": (ZstdCodec(level=1), Crc32cCodec())}
    return encoding


def _zarr_ready(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` as it is written: text as fixed-width NumPy strings, no stale encodings.

    Zarr v3's variable-length strings read back as NumPy's ``StringDType``, which
    scikit-learn and older pandas reject; fixed-width strings (zarr-python's
    ``FixedLengthUTF32``, not yet in the v3 spec) read back as ``<U`` arrays that
    every tool takes. Text (labels, splits) is small, and must be in memory anyway
    for its width to be known.
    """
    out = ds.copy()
    for name, variable in ds.variables.items():
        if variable.dtype.kind in "UOT":
            text = variable.load() if variable.chunks is not None else variable
            values = np.asarray(text.values)
            if values.dtype.kind == "O" and not all(isinstance(v, str) for v in values.flat):
                out[name] = text  # mixed objects: Zarr chooses (and refuses what it cannot)
            else:
                fixed = np.array(values.tolist(), dtype=str).reshape(values.shape)
                out[name] = xr.Variable(text.dims, fixed, text.attrs)  # no stale encoding
    for variable in out.variables.values():
        for key in ("chunks", "preferred_chunks", "compressors", "compressor", "filters",
                    "serializer"):
            variable.encoding.pop(key, None)
    return out
