"""Resampling a panel to a coarser regular grid (the maths: :mod:`..compute.resampling`)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from suanli.datasets import dask_array, timestamps

from ..compute.resampling import AGGREGATIONS, bin_positions, resample_block
from ..errors import PipelineDefinitionError
from ..registry import step
from .durations import seconds


def _check_resample(params: Mapping[str, Any]) -> None:
    seconds(str(params["every"]), where="resample: every")
    how = params["how"]
    choices = how.values() if isinstance(how, Mapping) else [how]
    if not isinstance(how, str | Mapping) or any(c not in AGGREGATIONS for c in choices):
        raise PipelineDefinitionError(
            f"resample: how is one of {', '.join(AGGREGATIONS)}, or a mapping from channel "
            f"to one of them, got {how!r}")
    if params["min_count"] < 0:
        raise PipelineDefinitionError(f"resample: min_count must be >= 0, got "
                                      f"{params['min_count']}")


@step("resample", check=_check_resample, flexible=("how",))
def resample(ds: xr.Dataset, *, every: str = "1h", how: str | dict[str, str] = "mean",
             min_count: int = 0) -> xr.Dataset:
    """Resample the panel to bins of ``every`` (``15min``, ``1h``, ``1D``) along time.

    ``how`` reduces each bin's samples: ``mean``, ``sum``, ``min``, ``max``,
    ``last`` or ``count``, NaN skipped, for every channel or per channel
    (``{flow: sum, speed: mean}``; channels not named are averaged).
    ``min_count``: fewer values than this make ``sum``, ``min``, ``max`` and
    ``last`` NaN, as in pandas. Bins start at midnight of the first day and are
    labelled by their start, as ``pandas.DataFrame.resample`` does; every bin
    from the first sample's to the last's is kept, empty ones NaN. Times may be
    irregular (missing timestamps are gaps). A ``label(unit, time)`` becomes
    the bin's maximum (1 if any sample was 1), NaN where the bin has none; other
    time-dimensioned variables are dropped.
    """
    _check_resample({"every": every, "how": how, "min_count": min_count})
    times = timestamps(ds, step="resample")
    every_ns = round(seconds(every, where="resample: every") * 1e9)
    grid = _bins(times, every_ns)
    signal = ds["signal"].transpose("unit", "time", "channel")
    channels = [str(c) for c in signal["channel"].values]
    unknown = sorted(set(how) - set(channels)) if isinstance(how, Mapping) else []
    if unknown:
        raise PipelineDefinitionError(f"resample: how names channels {unknown} the panel does "
                                      f"not have; its channels: {', '.join(channels)}")
    per_channel = [how.get(c, "mean") if isinstance(how, Mapping) else how for c in channels]
    data = dask_array(signal).rechunk({2: -1})
    out = xr.Dataset(
        {"signal": (("unit", "time", "channel"),
                    _resampled(data, grid, per_channel, min_count),
                    {**signal.attrs, "resampled": f"{every} ({', '.join(per_channel)})"})},
        coords={"unit": ds["unit"], "channel": ds["channel"], "time": grid.labels},
        attrs={**ds.attrs, "sample_rate": 1e9 / every_ns})
    if "label" in ds.variables and ds["label"].dims == ("unit", "time"):
        label = dask_array(ds["label"]).astype(np.float32)[:, :, None]
        out["label"] = (("unit", "time"), _resampled(label, grid, ["max"], 0)[:, :, 0],
                        {**ds["label"].attrs, "resampled": f"{every} (max)"})
    for name, variable in ds.data_vars.items():
        if name not in out and "time" not in variable.dims:
            out[name] = variable
    out["time"].attrs["sample_rate"] = 1e9 / every_ns
    return out


class _Grid:
    """Where each sample falls: bins from ``first`` for ``count`` bins, the output's
    ``labels``, and either ``per_bin`` samples each (regular input) or none."""

    def __init__(self, bin_of: np.ndarray, labels: np.ndarray, per_bin: int | None,
                 lead: int) -> None:
        self.bin_of, self.labels, self.per_bin, self.lead = bin_of, labels, per_bin, lead
        self.first, self.count = int(bin_of[0]), len(labels)


def _bins(times: np.ndarray, every_ns: int) -> _Grid:
    if times.size == 0:
        raise PipelineDefinitionError("resample: the panel has no time points")
    steps = np.diff(times).astype(np.int64)
    if (steps <= 0).any():
        at = int(np.argmax(steps <= 0))
        raise PipelineDefinitionError(f"resample: times must increase; 'time' goes from "
                                      f"{times[at]} to {times[at + 1]} at position {at + 1}")
    origin = times[0].astype("datetime64[D]").astype("datetime64[ns]")  # pandas' start_day
    offsets = (times - origin).astype(np.int64)
    bin_of = offsets // every_ns
    labels = origin + (np.arange(bin_of[0], bin_of[-1] + 1) * every_ns).astype(
        "timedelta64[ns]")
    per_bin, lead = None, 0
    if steps.size and (steps == steps[0]).all() and every_ns % int(steps[0]) == 0:
        per_bin = every_ns // int(steps[0])
        lead = int(offsets[0] % every_ns) // int(steps[0])
    elif steps.size and every_ns < int(np.median(steps)):
        raise PipelineDefinitionError(
            f"resample makes a coarser grid: every {every_ns / 1e9:g} s is finer than the "
            f"data's spacing ({np.median(steps) / 1e9:g} s)")
    return _Grid(bin_of, labels, per_bin, lead)


def _resampled(data: da.Array, grid: _Grid, how: list[str], min_count: int) -> da.Array:
    """``data`` (unit, time, channel) reduced per bin, in chunks whose bins are whole."""
    bounds = np.cumsum((0, *data.chunks[1]))
    # Move each chunk boundary to the start of the bin it falls in.
    starts = np.unique(np.searchsorted(grid.bin_of, grid.bin_of[bounds[1:-1]], side="left"))
    cuts = [0, *[int(s) for s in starts if 0 < s < data.shape[1]], data.shape[1]]
    data = data.rechunk({1: tuple(np.diff(cuts).tolist())})
    plans: list[dict[str, Any]] = []
    for start, stop in itertools.pairwise(cuts):
        first = int(grid.bin_of[start])
        last = int(grid.bin_of[stop]) - 1 if stop < len(grid.bin_of) else grid.first + \
            grid.count - 1
        n_bins = last - first + 1
        if grid.per_bin is not None:
            plans.append({"lead": grid.lead if start == 0 else 0, "per_bin": grid.per_bin,
                          "n_bins": n_bins, "index": None})
        else:
            plans.append({"lead": 0, "per_bin": 0, "n_bins": n_bins,
                          "index": bin_positions(grid.bin_of[start:stop], first, n_bins)})

    def reduce(block: Any, block_id: tuple[int, ...] | None = None) -> Any:
        return resample_block(block, how=how, min_count=min_count,
                              **plans[block_id[1] if block_id else 0])

    return da.map_blocks(reduce, data, dtype=data.dtype, meta=data._meta,
                         chunks=(data.chunks[0], tuple(p["n_bins"] for p in plans),
                                 data.chunks[2]))
