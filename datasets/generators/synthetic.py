"""``synthetic://SCENARIO?param=value&...`` URIs and the lazy datasets behind them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import dask.array as da
import holidays
import numpy as np
import pandas as pd
import xarray as xr

from ..chunking import panel_chunks
from ..errors import DatasetError
from ..timeaxis import epoch_units
from . import shapes as sh
from . import telemetry as tm
from . import traffic as tr
from . import vitals as vt
from .blocks import generate_range

#: Samples per time chunk of generated data: 64 generation blocks, 48 MiB of
#: float32 per unit. A pipeline runs about ten tasks per chunk (overlaps,
#: moments, features), each ~1-2 ms of scheduling on the distributed scheduler;
#: at this size that is a few percent of the ~70 ms of work per chunk (12 MiB
#: chunks made sensor-faults' features 1.55x slower on a 2-worker cluster).
DEFAULT_CHUNK_SAMPLES = 64 * tm.BLOCK


def telemetry(units: int = 40, duration: str = "10min", sample_rate: float = 1024.0,
              seed: int = 0, gaps_per_hour: float = 6.0,
              chunk_samples: int = DEFAULT_CHUNK_SAMPLES) -> xr.Dataset:
    """Lazy industrial telemetry panel (see :mod:`suanli.datasets.generators.telemetry`).

    Parameters
    ----------
    units
        Number of machines; classes are balanced in each group of five.
    duration
        Recording length per machine, e.g. ``"10min"``, ``"24h"``.
    sample_rate
        Samples per second, in Hz.
    seed
        Same seed, same bytes, whatever the chunking.
    gaps_per_hour
        Mean number of sensor dropouts (short NaN runs) per machine and hour.
    chunk_samples
        Samples per time chunk; rounded to whole generation blocks when larger than one.
    """
    samples = round(pd.Timedelta(duration).total_seconds() * sample_rate)
    if units < 1 or samples < 1:
        raise DatasetError(f"telemetry needs units >= 1 and a positive duration; got "
                           f"units={units}, duration={duration!r}", variable="signal")
    if chunk_samples > tm.BLOCK:
        chunk_samples = chunk_samples // tm.BLOCK * tm.BLOCK
    time_chunks = _split(samples, max(1, chunk_samples))
    starts = np.concatenate([[0], np.cumsum(time_chunks)])

    def make_chunk(block_id: tuple[int, int, int]) -> np.ndarray:
        unit, tchunk, _ = block_id
        values = tm.generate_range(seed, unit, int(starts[tchunk]), int(starts[tchunk + 1]),
                                   sample_rate, gaps_per_hour)
        return values[np.newaxis]

    signal = da.map_blocks(
        make_chunk,
        dtype=np.float32,
        chunks=((1,) * units, time_chunks, (len(tm.CHANNELS),)),
        name=f"telemetry-{seed}-{units}-{samples}-{sample_rate}-{gaps_per_hour}-{chunk_samples}",
        meta=np.empty((0, 0, 0), dtype=np.float32),
    )
    labels = np.array([tm.machine_parameters(seed, u).label for u in range(units)], dtype=np.int16)
    time = xr.Coordinates.from_xindex(xr.indexes.RangeIndex.arange(0, samples, 1, dim="time"))
    ds = xr.Dataset(
        {
            "signal": (("unit", "time", "channel"), signal,
                       {"long_name": "sensor signal", "units_by_channel": tm.UNITS_OF_MEASURE}),
            "label": (("unit",), labels, {"long_name": "machine condition",
                                          "classes": list(tm.CLASSES)}),
        },
        coords=time,
    ).assign_coords(unit=np.arange(units), channel=list(tm.CHANNELS))
    ds["time"].attrs.update(sample_rate=float(sample_rate), units="samples")
    ds.attrs.update(
        scenario="telemetry", seed=seed, sample_rate=float(sample_rate),
        source=f"synthetic://telemetry?units={units}&duration={duration}"
               f"&sample_rate={sample_rate:g}&seed={seed}",
    )
    return ds


def _blocked_panel(scenario: str, module: Any, units: int, duration: str, seed: int,
                   chunk_bytes: int | None, start: pd.Timestamp, **knobs: Any) -> xr.Dataset:
    """A lazy panel whose signal and ``label(unit, time)`` come from ``module.make_block``.

    ``make_block`` returns the channels plus one last column, the label flag.
    Time counts seconds since ``start`` (CF ``units``, decoded to datetimes by
    xarray on reading a written copy and by :func:`~suanli.datasets.timestamps`).
    """
    sample_rate = module.SAMPLE_RATE
    samples = round(pd.Timedelta(duration).total_seconds() * sample_rate)
    if units < 1 or samples < 1:
        raise DatasetError(f"{scenario} needs units >= 1 and a positive duration; got "
                           f"units={units}, duration={duration!r}", variable="signal")
    channels = len(module.CHANNELS)
    chunking = panel_chunks(units, samples, channels + 1, 4, chunk_bytes)
    block = module.BLOCK
    time_chunk = max(block, chunking["time"] // block * block)
    time_chunks = _split(samples, time_chunk)
    unit_chunks = _split(units, chunking["unit"])
    unit_starts = np.concatenate([[0], np.cumsum(unit_chunks)])
    time_starts = np.concatenate([[0], np.cumsum(time_chunks)])

    def make_chunk(block_id: tuple[int, int, int]) -> np.ndarray:
        uchunk, tchunk, _ = block_id
        start, stop = int(time_starts[tchunk]), int(time_starts[tchunk + 1])
        return np.stack([
            generate_range(lambda s, u, i: module.make_block(s, u, i, **knobs), block, seed,
                           unit, start, stop)
            for unit in range(int(unit_starts[uchunk]), int(unit_starts[uchunk + 1]))])

    token = "-".join(f"{k}{v}" for k, v in sorted(knobs.items()))
    both = da.map_blocks(
        make_chunk, dtype=np.float32, chunks=(unit_chunks, time_chunks, (channels + 1,)),
        name=f"{scenario}-{seed}-{units}-{samples}-{time_chunk}-{chunking['unit']}-{token}",
        meta=np.empty((0, 0, 0), dtype=np.float32))
    # Columns picked blockwise, not by slicing: a slice's graph is materialised, a
    # few hundred bytes per chunk (hundreds of MiB for a tebibyte of small chunks).
    signal = da.map_blocks(_columns, both, 0, channels, dtype=np.float32,
                           chunks=(unit_chunks, time_chunks, (channels,)))
    label = da.map_blocks(_flag, both, channels, dtype=np.int8, drop_axis=2)
    step = 1.0 / sample_rate
    time = xr.Coordinates.from_xindex(xr.indexes.RangeIndex.arange(
        0.0, samples * step, step, dim="time"))
    ds = xr.Dataset(
        {"signal": (("unit", "time", "channel"), signal,
                    {"units_by_channel": ", ".join(f"{k}: {v}" for k, v in
                                                   module.UNITS_OF_MEASURE.items())}),
         "label": (("unit", "time"), label,
                   {"classes": list(module.CLASSES)})},
        coords=time,
    ).assign_coords(unit=np.arange(units), channel=list(module.CHANNELS))
    ds["time"].attrs.update(sample_rate=float(sample_rate), units=epoch_units(start))
    ds.attrs.update(scenario=scenario, seed=seed, sample_rate=float(sample_rate),
                    source=f"synthetic://{scenario}?units={units}&duration={duration}"
                           f"&seed={seed}&start={start.date().isoformat()}")
    return ds


def _columns(block: np.ndarray, start: int, stop: int) -> np.ndarray:
    return block[:, :, start:stop]


def _flag(block: np.ndarray, column: int) -> np.ndarray:
    return block[:, :, column].astype(np.int8)


def _start(scenario: str, start: str, *, monday: bool = False) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(start)
    except ValueError:
        raise DatasetError(f"{scenario}: start {start!r} is not a date (2024-01-01)",
                           variable="time") from None
    if stamp.tzinfo is not None or stamp != stamp.normalize():
        raise DatasetError(f"{scenario}: start is a date without time or zone, got {start!r}",
                           variable="time")
    if monday and stamp.weekday() != 0:
        raise DatasetError(f"{scenario}: start must be a Monday (the generator builds whole "
                           f"weeks); {start} is a {stamp.day_name()}", variable="time")
    return stamp


def traffic(units: int = 50, duration: str = "28D", seed: int = 0,
            incidents_per_week: float = 1.5, outages_per_month: float = 1.0,
            start: str = "2024-01-01", country: str = "DE", chunk_bytes: int = 0
            ) -> xr.Dataset:
    """Lazy city traffic panel (see :mod:`suanli.datasets.generators.traffic`).

    ``units`` road sensors read every 5 minutes for ``duration`` (e.g. ``"28D"``)
    from ``start`` (a Monday), with the public holidays of ``country``;
    ``label(unit, time)`` is 1 during incidents.
    """
    first = _start("traffic", start, monday=True)
    if country not in holidays.list_supported_countries():
        raise DatasetError(f"traffic: country {country!r} is not one the holidays package "
                           f"knows (ISO 3166 codes such as DE, FR, US)")
    ds = _blocked_panel("traffic", tr, units, duration, seed, chunk_bytes or None, first,
                        incidents_per_week=incidents_per_week,
                        outages_per_month=outages_per_month,
                        first_day=(first - pd.Timestamp(0)).days, country=country)
    ds.attrs["holidays_country"] = country
    return ds


def vitals(units: int = 20, duration: str = "24h", seed: int = 0,
           episodes_per_day: float = 0.5, dropouts_per_hour: float = 0.5,
           start: str = "2024-01-01", chunk_bytes: int = 0) -> xr.Dataset:
    """Lazy patient vital-signs panel (see :mod:`suanli.datasets.generators.vitals`).

    ``units`` patients at 1 Hz for ``duration``; ``label(unit, time)`` is 1
    during deterioration episodes.
    """
    return _blocked_panel("vitals", vt, units, duration, seed, chunk_bytes or None,
                          _start("vitals", start), episodes_per_day=episodes_per_day,
                          dropouts_per_hour=dropouts_per_hour)


def shapes(units: int = 400, length: int = 150, seed: int = 0, noise: float = 0.3,
           chunk_units: int = 1000) -> xr.Dataset:
    """Lazy panel of short series whose classes differ in shape and timing (see
    :mod:`suanli.datasets.generators.shapes`): ``units`` series of ``length``
    samples at 1 Hz, one ``label(unit)`` each."""
    if units < 1 or length < 9:
        raise DatasetError(f"shapes needs units >= 1 and length >= 9; got units={units}, "
                           f"length={length}", variable="signal")
    unit_chunks = _split(units, max(1, chunk_units))
    starts = np.concatenate([[0], np.cumsum(unit_chunks)])

    def make_chunk(block_id: tuple[int, int, int]) -> np.ndarray:
        first, stop = int(starts[block_id[0]]), int(starts[block_id[0] + 1])
        return np.stack([sh.series(seed, unit, length, noise) for unit in range(first, stop)])

    signal = da.map_blocks(make_chunk, dtype=np.float32,
                           chunks=(unit_chunks, (length,), (len(sh.CHANNELS),)),
                           name=f"shapes-{seed}-{units}-{length}-{noise}-{chunk_units}",
                           meta=np.empty((0, 0, 0), dtype=np.float32))
    labels = np.array([sh.label_of(seed, unit) for unit in range(units)], dtype=np.int16)
    time = xr.Coordinates.from_xindex(xr.indexes.RangeIndex.arange(0, length, 1, dim="time"))
    ds = xr.Dataset(
        {"signal": (("unit", "time", "channel"), signal, {"long_name": "sensor signal"}),
         "label": (("unit",), labels, {"long_name": "waveform", "classes": list(sh.CLASSES)})},
        coords=time,
    ).assign_coords(unit=np.arange(units), channel=list(sh.CHANNELS))
    ds["time"].attrs.update(sample_rate=sh.SAMPLE_RATE, units="samples")
    ds.attrs.update(scenario="shapes", seed=seed, sample_rate=sh.SAMPLE_RATE,
                    source=f"synthetic://shapes?units={units}&length={length}&seed={seed}")
    return ds


def _split(total: int, size: int) -> tuple[int, ...]:
    full, rest = divmod(total, size)
    return (size,) * full + ((rest,) if rest else ())


_DURATION_SHORTCUTS = {"days": "D", "hours": "h", "minutes": "min", "seconds": "s"}

GENERATORS: dict[str, Callable[..., xr.Dataset]] = {
    "telemetry": telemetry, "traffic": traffic, "vitals": vitals, "shapes": shapes}


def generator_names() -> tuple[str, ...]:
    return tuple(sorted(GENERATORS))


def open_synthetic(uri: str) -> xr.Dataset:
    """The dataset named by ``synthetic://SCENARIO?k=v&...``.

    ``hours=``, ``minutes=`` or ``seconds=`` are shortcuts for ``duration=``.
    """
    parts = urlsplit(uri)
    scenario = parts.netloc or parts.path.strip("/")
    if scenario not in GENERATORS:
        raise DatasetError(f"unknown synthetic scenario {scenario!r}; known: "
                           f"{', '.join(generator_names())}", path=uri)
    generator = GENERATORS[scenario]
    signature = inspect.signature(generator)
    params: dict[str, Any] = {}
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key in _DURATION_SHORTCUTS:
            key, raw = "duration", f"{raw}{_DURATION_SHORTCUTS[key]}"
        if key not in signature.parameters:
            raise DatasetError(f"unknown parameter {key!r} for synthetic://{scenario}; allowed: "
                               f"{', '.join([*signature.parameters, *_DURATION_SHORTCUTS])}",
                               path=uri)
        default = signature.parameters[key].default
        try:
            params[key] = type(default)(raw) if not isinstance(default, str) else raw
        except ValueError:
            raise DatasetError(f"parameter {key}={raw!r} of synthetic://{scenario} should be "
                               f"{type(default).__name__}", path=uri) from None
    return generator(**params)
