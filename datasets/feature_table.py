"""Features as one Parquet table: a row per (unit, window), a column per feature value.

The layout a data engineer's tools (pandas, DuckDB, Spark, a warehouse's external
table) read without xarray: the row dimensions (``unit`` and the position the
features are computed at, ``window``) are key columns, their coordinates
(``window_start``, ``origin_time``) columns beside them, a per-unit variable
(``label``, ``split``) is repeated down its unit's rows, and each variable with
more dimensions gives one column per value of them, named
``band_power[vibration,1-10Hz]``. What lies along no row dimension (ROCKET's
biases) and the coordinates of the feature dimensions go into the schema
metadata, with everything needed to rebuild the Dataset: ``datasets.open`` on the folder
(:func:`feature_table_dataset`) gives back what was written.

Written like every suanli output: one file per block of units, in parallel, into a
staging folder committed whole with its manifest.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from .atomic import LocalOutput, output_for
from .errors import DatasetError
from .zarr_store import PendingWrite

#: The layout name recorded in the table's ``suanli`` schema metadata.
LAYOUT = "features"
#: The dimension of the positions features are computed at: a row each, per unit.
POSITION = "window"
#: About this many bytes of features per file.
FILE_BYTES = 128 * 2**20
#: Values without a unit dimension kept in the metadata; more belongs in Zarr.
CONSTANT_VALUES = 1_000_000


def row_dims(ds: xr.Dataset) -> tuple[str, ...]:
    """The dimensions a row stands for: ``unit`` and, where the features are computed
    at positions along the data (every suanli pipeline's are), ``window``."""
    if "unit" not in ds.dims:
        raise DatasetError("a feature table needs a 'unit' dimension; found "
                           f"{', '.join(map(str, ds.dims)) or 'none'}")
    return ("unit", POSITION) if POSITION in ds.dims else ("unit",)


def prepare_feature_table(ds: xr.Dataset, path: str | Path, *, overwrite: bool = False,
                          storage_options: dict[str, Any] | None = None) -> PendingWrite:
    """Set up an atomic write of features ``ds`` as a Parquet table at ``path``
    without computing anything (compute ``.delayed``, then ``.commit()``)."""
    rows = row_dims(ds)
    layout = _layout(ds, rows)
    output = output_for(path, overwrite=overwrite, storage_options=storage_options)
    try:
        if isinstance(output, LocalOutput):
            output.staging.mkdir()
        per_unit = max(1, ds.nbytes // max(1, ds.sizes["unit"]))
        units_per_file = max(1, FILE_BYTES // per_unit)
        per_row = ds[[name for name in layout["variables"]]]
        parts = [dask.delayed(_write_part, pure=True)(
                     per_row.isel(unit=slice(start, start + units_per_file)), layout,
                     f"{output.staging_location}/part-{index:05d}.parquet",
                     output.storage_options)
                 for index, start in enumerate(range(0, ds.sizes["unit"], units_per_file))]
    except BaseException:
        output.discard()
        raise
    return PendingWrite(parts, output, kind="parquet")


def _layout(ds: xr.Dataset, rows: tuple[str, ...]) -> dict[str, Any]:
    """How each variable maps to columns, and what goes into the metadata instead."""
    variables: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    feature_dims: dict[str, Any] = {}
    for name, variable in ds.data_vars.items():
        name = str(name)
        if not set(variable.dims) & set(rows):
            if variable.size > CONSTANT_VALUES:
                raise DatasetError(f"{variable.size:,} values along no row dimension do not "
                                   "fit a feature table's metadata; write Zarr instead",
                                   variable=name)
            constants[name] = {"dims": list(map(str, variable.dims)),
                               **_values(variable.values), "attrs": _jsonable(variable.attrs)}
            continue
        own_rows = [d for d in rows if d in variable.dims]
        extra = [str(d) for d in variable.dims if d not in rows]
        for dim in extra:
            feature_dims.setdefault(dim, _labels(ds, dim))
        combos = itertools.product(*(feature_dims[d] for d in extra))
        columns = [f"{name}[{','.join(map(str, combo))}]" if extra else name
                   for combo in combos]
        variables[name] = {"dims": own_rows + extra, "columns": columns,
                           "dtype": _dtype_name(variable.dtype),
                           "attrs": _jsonable(variable.attrs)}
    counts = Counter(c for v in variables.values() for c in v["columns"])
    clash = next((c for c, n in counts.items() if n > 1 or c in rows), None)
    if clash is not None:
        raise DatasetError(f"two features would share the column {clash!r} (coordinate "
                           "values repeat); write Zarr instead", variable=clash.split("[")[0])
    row_coords = {str(name): {"dims": list(map(str, c.dims)), "dtype": _dtype_name(c.dtype),
                              "attrs": _jsonable(c.attrs)}
                  for name, c in ds.coords.items()
                  if name not in ds.dims and c.dims and set(c.dims) <= set(rows)}
    other_coords = {str(name): {"dims": list(map(str, c.dims)), **_values(c.values),
                                "attrs": _jsonable(c.attrs)}
                    for name, c in ds.coords.items()
                    if name not in ds.dims and name not in row_coords}
    return {"layout": LAYOUT, "rows": list(rows), "variables": variables,
            "row_keys": {d: {"dtype": _dtype_name(ds[d].dtype), "attrs": _jsonable(ds[d].attrs)}
                         for d in rows},
            "row_coords": row_coords, "feature_dims": {
                d: {**_values(ds[d].values), "attrs": _jsonable(ds[d].attrs)}
                if d in ds.coords else {**_values(np.arange(ds.sizes[d])), "index": False}
                for d in feature_dims},
            "constants": constants, "coords": other_coords, "attrs": _jsonable(ds.attrs)}


def _labels(ds: xr.Dataset, dim: str) -> list[Any]:
    if dim in ds.coords:
        return [v.item() if hasattr(v, "item") else v for v in np.asarray(ds[dim].values)]
    return list(range(ds.sizes[dim]))


def _dtype_name(dtype: np.dtype) -> str:
    return "str" if dtype.kind in "OUT" else dtype.str


def _values(values: np.ndarray) -> dict[str, Any]:
    """An array as JSON: its values (times as ISO text) and its dtype."""
    values = np.asarray(values)
    if values.dtype.kind == "M":
        listed = np.datetime_as_string(values).tolist()
    elif values.dtype.kind in "OUT":
        listed = values.astype(str).tolist()
    else:
        listed = values.tolist()
    return {"values": listed, "dtype": _dtype_name(values.dtype)}


def _from_values(entry: dict[str, Any]) -> np.ndarray:
    return np.asarray(entry["values"], dtype=entry["dtype"])


def _jsonable(attrs: dict[Any, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({str(k): v for k, v in attrs.items()}, default=str))


def _write_part(block: xr.Dataset, layout: dict[str, Any], path: str,
                storage_options: dict[str, Any]) -> int:
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = layout["rows"]
    grid = [block[d].values for d in rows]
    shape = tuple(len(g) for g in grid)
    columns: dict[str, Any] = {d: np.broadcast_to(
        g.reshape([-1 if i == j else 1 for j in range(len(rows))]), shape).ravel()
        for i, (d, g) in enumerate(zip(rows, grid, strict=True))}
    for name in layout["row_coords"]:
        columns[name] = _along_rows(block[name], rows, shape).ravel()
    for name, spec in layout["variables"].items():
        variable = block[name].transpose(*spec["dims"])
        values = _along_rows(variable, rows, shape)
        flat = values.reshape(math.prod(shape), -1)
        for i, column in enumerate(spec["columns"]):
            columns[column] = flat[:, i]
    table = pa.table({k: pa.array(_arrow_ready(v)) for k, v in columns.items()})
    table = table.replace_schema_metadata({b"suanli": json.dumps(layout).encode()})
    with fsspec.open(path, "wb", **storage_options) as handle:
        pq.write_table(table, handle)
    return int(block.sizes["unit"])


def _along_rows(variable: xr.DataArray, rows: list[str], shape: tuple[int, ...]
                ) -> np.ndarray:
    """``variable``'s values broadcast over every row dimension, feature dimensions last."""
    values = np.asarray(variable.values)
    present = [d for d in rows if d in variable.dims]
    expanded = values.reshape([values.shape[present.index(d)] if d in present else 1
                               for d in rows] + list(values.shape[len(present):]))
    return np.broadcast_to(expanded, shape + values.shape[len(present):])


def _arrow_ready(values: np.ndarray) -> np.ndarray:
    return values.astype(str) if values.dtype.kind in "OUT" else np.ascontiguousarray(values)


def is_feature_table(metadata: dict[bytes, bytes] | None) -> bool:
    """Whether a Parquet schema's metadata says it is a feature table."""
    written = (metadata or {}).get(b"suanli")
    return written is not None and json.loads(written).get("layout") == LAYOUT


def feature_table_dataset(frame: pd.DataFrame, layout: dict[str, Any], *,
                          source: str) -> xr.Dataset:
    """The Dataset a feature table was written from, rebuilt from its rows."""
    rows = layout["rows"]
    keys = [pd.unique(frame[d].to_numpy()) for d in rows]
    shape = tuple(len(k) for k in keys)
    expected = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"),
                        axis=-1).reshape(-1, len(rows))
    found = np.stack([pd.Index(k).get_indexer(frame[d].to_numpy())
                      for d, k in zip(rows, keys, strict=True)], axis=-1)
    if len(frame) != math.prod(shape) or not np.array_equal(found, expected):
        raise DatasetError(f"the feature table's rows are not one complete "
                           f"{' x '.join(rows)} grid in order (rows were added, dropped or "
                           "reordered since suanli wrote it)", path=source)
    dims = {d: _from_values(v) for d, v in layout["feature_dims"].items()}
    coords: dict[str, Any] = {
        d: (d, _typed(k, spec["dtype"]), spec["attrs"])
        for (d, spec), k in zip(layout["row_keys"].items(), keys, strict=True)}
    coords.update({d: (d, dims[d], spec["attrs"]) for d, spec in
                   layout["feature_dims"].items() if spec.get("index", True)})
    for name, spec in layout["row_coords"].items():
        coords[name] = (spec["dims"], _first_along(frame[name].to_numpy(), rows, shape,
                                                   spec["dims"], spec["dtype"]), spec["attrs"])
    for name, spec in layout["coords"].items():
        coords[name] = (spec["dims"], _from_values(spec), spec["attrs"])
    data: dict[str, Any] = {}
    for name, spec in layout["variables"].items():
        own_rows = [d for d in spec["dims"] if d in rows]
        extra = [d for d in spec["dims"] if d not in rows]
        block = np.stack([frame[c].to_numpy() for c in spec["columns"]], axis=-1)
        block = block.reshape(shape + tuple(len(dims[d]) for d in extra))
        index = tuple(slice(None) if d in own_rows else 0 for d in rows)
        data[name] = (spec["dims"], _typed(block[index], spec["dtype"]), spec["attrs"])
    for name, spec in layout["constants"].items():
        data[name] = (spec["dims"], _from_values(spec), spec["attrs"])
    return xr.Dataset(data, coords=coords, attrs=layout["attrs"])


def _first_along(values: np.ndarray, rows: list[str], shape: tuple[int, ...],
                 dims: list[str], dtype: str) -> np.ndarray:
    grid = values.reshape(shape)
    return _typed(grid[tuple(slice(None) if d in dims else 0 for d in rows)], dtype)


def _typed(values: np.ndarray, dtype: str) -> np.ndarray:
    return values.astype(str) if dtype == "str" else values.astype(dtype)
