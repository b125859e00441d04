"""Tables (Parquet, CSV) as panels: files, folders, globs, compressed CSV, object storage.

Two layouts map to the panel ``signal(unit, time, channel)``:

- long: one row per reading, columns ``unit, time, channel, value``;
- wide: one row per time step, columns ``unit, time`` and one per channel.

Every file's schema is read before any data, and a file whose columns or
types differ from the first file's is rejected naming the file and the column.
The table is then read with pyarrow and reshaped in memory on the client:
fine for exports of up to a few GB; larger data belongs in Zarr (convert
once with ``datasets.write``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import xarray as xr

from .chunking import panel_chunks
from .errors import DatasetError
from .feature_table import feature_table_dataset, is_feature_table
from .panel import validate
from .retrying import attempts_note, read_with_retries
from .sources import Source

#: Parquet schema metadata key under which suanli records how a table maps to a panel.
SUANLI_METADATA = b"suanli"
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zst", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def file_schema(source: Source, name: str, kind: str) -> pa.Schema:
    """One file's schema, read without its data (Parquet footer, CSV first block)."""
    def read() -> pa.Schema:
        if kind == "parquet":
            import pyarrow.parquet as pq

            with source.open(name) as handle:
                return pq.read_schema(handle)
        import pyarrow.csv as pcsv

        with source.open(name, compression="infer") as handle:
            return pcsv.open_csv(handle, parse_options=_csv_parse(name)).schema

    try:
        return read_with_retries(read, what=source.full(name))
    except (pa.ArrowException, OSError, EOFError, ValueError) as error:
        raise DatasetError(f"cannot read the {kind} header"
                           f"{attempts_note(error)}: {error}",
                           path=source.full(name)) from error


def _csv_parse(name: str) -> Any:
    import pyarrow.csv as pcsv

    return pcsv.ParseOptions(delimiter="\t" if ".tsv" in name else ",")


def _kind_of(arrow_type: pa.DataType, strict: bool) -> str:
    if strict:
        return str(arrow_type)
    # CSV types are guessed per file: an integer column may read as float in a
    # file with a gap. Only a change of kind is drift there.
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "number"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    if pa.types.is_null(arrow_type):
        return "null"
    return "text"


def check_schemas(source: Source, names: Sequence[str], kind: str) -> pa.Schema:
    """The common schema of ``names``; the first file that differs is named, with the column."""
    strict = kind == "parquet"
    first = file_schema(source, names[0], kind)
    reference = {f.name: _kind_of(f.type, strict) for f in first}
    for name in names[1:]:
        schema = file_schema(source, name, kind)
        found = {f.name: _kind_of(f.type, strict) for f in schema}
        for column in reference:
            if column not in found:
                raise DatasetError(f"column missing in this file (present in {names[0]})",
                                   path=name, column=column)
        for column, kind_here in found.items():
            if column not in reference:
                raise DatasetError(f"unexpected extra column (absent from {names[0]})",
                                   path=name, column=column)
            if "null" in (kind_here, reference[column]):
                continue  # an all-empty column in one CSV file
            if kind_here != reference[column]:
                raise DatasetError(f"column type {kind_here} differs from {reference[column]} "
                                   f"in {names[0]}", path=name, column=column)
    return first


def read_table(source: Source, names: Sequence[str], kind: str,
               checked: bool = False) -> pd.DataFrame:
    """All files as one DataFrame, after the schema check (unless already ``checked``)."""
    if not checked:
        check_schemas(source, names, kind)
    def read_file(name: str) -> pa.Table:
        if kind == "parquet":
            import pyarrow.parquet as pq

            with source.open(name) as handle:
                return pq.read_table(handle)
        import pyarrow.csv as pcsv

        with source.open(name, compression="infer") as handle:
            return pcsv.read_csv(handle, parse_options=_csv_parse(name))

    def read(name: str) -> pd.DataFrame:
        try:
            table = read_with_retries(lambda: read_file(name), what=source.full(name))
        except (pa.ArrowException, OSError, EOFError, ValueError) as error:
            raise DatasetError(f"cannot read the {kind} file"
                               f"{attempts_note(error)}: {error}",
                               path=source.full(name)) from error
        return table.to_pandas()

    # Arrow decodes without the GIL: read the files side by side.
    with ThreadPoolExecutor(max_workers=min(8, len(names), (os.cpu_count() or 1) * 2)) as pool:
        frames = list(pool.map(read, names))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def from_frame(frame: pd.DataFrame, *, unit: str = "unit", time: str = "time",
               channels: Sequence[str] | None = None, label: str | None = None,
               layout: str = "auto", channel: str = "channel", value: str = "value",
               sample_rate: float | None = None, source: str | None = None) -> xr.Dataset:
    """A validated panel from a long or wide table.

    Parameters
    ----------
    unit, time
        Columns naming the unit and the time of each row. ``time`` may hold
        datetimes, or numbers of seconds (then ``sample_rate`` is inferred from
        their spacing unless given).
    channels
        Wide layout: the channel columns (default: every other numeric column).
    label
        Column holding each unit's label (constant per unit gives ``label(unit)``,
        otherwise ``label(unit, time)``).
    layout
        ``"long"`` (``unit, time, channel, value``), ``"wide"``, or ``"auto"``:
        long when ``channel`` and ``value`` columns exist.
    """
    for name in (unit, time):
        if name not in frame.columns:
            raise DatasetError(f"the table has no {name!r} column; name it with "
                               f"{'unit' if name == unit else 'time'}=...; columns: "
                               f"{', '.join(map(str, frame.columns))}", path=source, column=name)
    if label is not None and label not in frame.columns:
        raise DatasetError("no such label column", path=source, column=label)
    if layout == "auto":
        layout = "long" if {channel, value} <= set(frame.columns) else "wide"
    if layout == "long":
        for name in (channel, value):
            if name not in frame.columns:
                raise DatasetError("a long table needs unit, time, channel and value columns",
                                   path=source, column=name)
        names = [str(c) for c in pd.unique(frame[channel])]  # in order of first mention
        value_columns = [value]
    elif layout == "wide":
        names = list(channels) if channels is not None else [
            str(c) for c in frame.columns if c not in (unit, time, label)
            and pd.api.types.is_numeric_dtype(frame[c])]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise DatasetError("no such channel column", path=source, column=missing[0])
        if not names:
            raise DatasetError("a wide table needs at least one numeric channel column",
                               path=source)
        value_columns = names
    else:
        raise DatasetError(f"layout must be 'long', 'wide' or 'auto', not {layout!r}",
                           path=source)
    for name in value_columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            raise DatasetError(f"channel values must be numbers, found {frame[name].dtype}",
                               path=source, column=name)
    # Scatter rows into the (unit, time, channel) grid by integer codes: one
    # vectorised pass, where a pandas pivot/reindex would build MultiIndexes.
    unit_codes, unit_index = pd.factorize(frame[unit], sort=False)
    time_codes, time_index = pd.factorize(frame[time], sort=True)
    units, times = np.asarray(unit_index), np.asarray(time_index)
    cell = unit_codes.astype(np.int64) * len(times) + time_codes
    if layout == "long":
        channel_codes = pd.Index(names).get_indexer(pd.Index(frame[channel].astype(str)))
        _reject_duplicate_codes(cell * len(names) + channel_codes, frame,
                                [unit, time, channel], source)
        flat = np.full(len(units) * len(times) * len(names), np.nan, dtype=np.float32)
        flat[cell * len(names) + channel_codes] = frame[value].to_numpy(np.float32)
    else:
        _reject_duplicate_codes(cell, frame, [unit, time], source)
        rows = np.full((len(units) * len(times), len(names)), np.nan, dtype=np.float32)
        rows[cell] = frame[names].to_numpy(np.float32)
        flat = rows.ravel()
    signal = flat.reshape(len(units), len(times), len(names))
    labels = None
    if label is not None:
        labels = pd.DataFrame({"cell": cell, "label": frame[label].to_numpy()}) \
            .drop_duplicates("cell")
    ds = xr.Dataset({"signal": (("unit", "time", "channel"), signal)},
                    coords={"unit": units, "time": times, "channel": names})
    if not np.issubdtype(ds["time"].dtype, np.datetime64):
        seconds = np.diff(times[: min(len(times), 10_000)].astype(float))
        rate = sample_rate or (float(f"{1.0 / float(np.median(seconds)):.9g}")
                               if len(seconds) else None)
        if not rate or not np.isfinite(rate) or rate <= 0:
            raise DatasetError("cannot tell the sample rate from numeric times: pass "
                               "sample_rate=HZ", path=source, column=time)
        ds = ds.assign_coords(time=np.arange(len(times)))
        ds["time"].attrs["sample_rate"] = float(rate)
    if labels is not None:
        ds = _with_labels(ds, labels, len(units), len(times))
    chunks = panel_chunks(len(units), len(times), len(names), 4)
    return validate(ds.chunk(chunks), source=source)


def _reject_duplicate_codes(codes: np.ndarray, frame: pd.DataFrame, key: list[str],
                            source: str | None) -> None:
    # Codes index a dense grid: counting beats hashing.
    counts = np.bincount(codes)
    if counts.max(initial=0) > 1:
        duplicated = pd.Series(codes).duplicated().to_numpy()
        row = frame[key][duplicated].iloc[0].tolist()
        raise DatasetError(f"{int(duplicated.sum())} duplicate ({', '.join(key)}) rows, "
                           f"e.g. {row}", path=source, column=key[-1])


def _with_labels(ds: xr.Dataset, labels: pd.DataFrame, n_units: int, n_times: int
                 ) -> xr.Dataset:
    """``label(unit)`` when constant within every unit, else ``label(unit, time)``."""
    values = labels["label"].to_numpy()
    cells = np.full(n_units * n_times, None, dtype=object)
    cells[labels["cell"].to_numpy()] = values
    grid = cells.reshape(n_units, n_times)
    per_unit = labels.assign(unit=labels["cell"] // n_times).groupby("unit")["label"] \
        .nunique(dropna=False)
    if (per_unit <= 1).all():
        first = labels.assign(unit=labels["cell"] // n_times).drop_duplicates("unit") \
            .set_index("unit")["label"].reindex(range(n_units))
        return ds.assign(label=("unit", _typed(first.to_numpy(), values)))
    return ds.assign(label=(("unit", "time"), _typed(grid, values)))


def _typed(array: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Back to the label column's dtype where no cell is empty."""
    if like.dtype != object and not pd.isna(array).any():
        return array.astype(like.dtype)
    return array


def open_tables(source: Source, names: Sequence[str], kind: str, **mapping: Any) -> xr.Dataset:
    """Parquet or CSV files as one panel, or suanli's feature table as its Dataset.

    Parquet written by suanli says how it maps to a panel (schema metadata
    ``suanli``); arguments given here take precedence.
    """
    schema = check_schemas(source, names, kind)
    written = (schema.metadata or {}).get(SUANLI_METADATA)
    if written is not None and is_feature_table(schema.metadata):
        return feature_table_dataset(read_table(source, names, kind, checked=True),
                                     json.loads(written), source=source.describe(names))
    defaults = {k: v for k, v in json.loads(written).items() if v is not None} if written \
        else {}
    frame = read_table(source, names, kind, checked=True)
    return from_frame(frame, source=source.describe(names), **{**defaults, **mapping})
