"""``synthetic://SCENARIO?param=value&...`` URIs and the lazy datasets behind them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DatasetError
from . import telemetry as tm

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


def _split(total: int, size: int) -> tuple[int, ...]:
    full, rest = divmod(total, size)
    return (size,) * full + ((rest,) if rest else ())


_DURATION_SHORTCUTS = {"hours": "h", "minutes": "min", "seconds": "s"}

GENERATORS: dict[str, Callable[..., xr.Dataset]] = {"telemetry": telemetry}


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
