"""NaN and infinity in a variable: counted, and located by coordinates, in one pass.

``value_report(ds)`` gives the counts of NaN, +inf and -inf and the first few
places each occurs (unit, time, channel), computed chunk by chunk so the data
is read once and never held whole. ``check_values`` applies a policy:
``"report"`` returns the report, ``"reject"`` raises a DatasetError quoting it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import xarray as xr

from .errors import DatasetError

KINDS = ("nan", "+inf", "-inf")
PLACES_PER_KIND = 5


@dataclass(frozen=True)
class ValueReport:
    """Non-finite values found in one variable."""

    variable: str
    counts: dict[str, int]
    #: Up to five places per kind, each a mapping of dim -> coordinate value.
    places: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    total: int = 0

    @property
    def clean(self) -> bool:
        return not any(self.counts.values())

    def summary(self) -> str:
        if self.clean:
            return f"{self.variable!r}: all {self.total} values finite"
        parts = []
        for kind in KINDS:
            if self.counts[kind]:
                where = "; ".join(", ".join(f"{k}={v}" for k, v in p.items())
                                  for p in self.places[kind][:3])
                parts.append(f"{self.counts[kind]} {kind} (first at {where})")
        return f"{self.variable!r}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "counts": self.counts, "total": self.total,
                "places": self.places}


def _scan(block: np.ndarray, offset: tuple[int, ...]) -> dict[str, Any]:
    # One isfinite pass for the common clean block; the kinds are told apart only
    # where something is not finite (the three masks cost ~25x as much).
    found: dict[str, Any] = {kind: (0, []) for kind in KINDS}
    bad = block.size - int(np.count_nonzero(np.isfinite(block)))
    if not bad:
        return found
    nan = np.isnan(block)
    masks = [("nan", nan)]
    if bad > int(np.count_nonzero(nan)):
        masks += [("+inf", np.isposinf(block)), ("-inf", np.isneginf(block))]
    for kind, mask in masks:
        count = int(np.count_nonzero(mask))
        positions = []
        if count:
            first = np.flatnonzero(mask)[:PLACES_PER_KIND]  # C order, as argwhere
            hits = np.stack(np.unravel_index(first, block.shape), axis=1)
            positions = [tuple(int(i + o) for i, o in zip(hit, offset, strict=True))
                         for hit in hits]
        found[kind] = (count, positions)
    return found


def lazy_value_report(ds: xr.Dataset, variable: str = "signal") -> Any:
    """A delayed ValueReport for ``ds[variable]`` (compute it with other work)."""
    if variable not in ds.variables:
        raise DatasetError("no such variable", variable=variable)
    array = ds[variable]
    if array.dtype.kind != "f":
        return dask.delayed(ValueReport)(variable, dict.fromkeys(KINDS, 0), {},
                                         int(array.size))
    data = array.data
    if not hasattr(data, "to_delayed"):
        import dask.array as da

        data = da.from_array(np.asarray(data))
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in data.chunks]
    scans = []
    # unoptimised: the same keys as the pipeline's own graph, so a census computed
    # with it shares the chunks instead of reading (or generating) them again
    for index, block in np.ndenumerate(data.to_delayed(optimize_graph=False)):
        offset = tuple(int(starts[axis][i]) for axis, i in enumerate(index))
        scans.append(dask.delayed(_scan)(block, offset))
    coords = {dim: array[dim].values if dim in array.coords else np.arange(size)
              for dim, size in zip(array.dims, array.shape, strict=True)}
    return dask.delayed(_merge)(scans, variable, tuple(map(str, array.dims)), coords,
                                int(array.size))


def _merge(scans: list[dict[str, Any]], variable: str, dims: tuple[str, ...],
           coords: dict[str, np.ndarray], total: int) -> ValueReport:
    counts = dict.fromkeys(KINDS, 0)
    positions: dict[str, list[tuple[int, ...]]] = {k: [] for k in KINDS}
    for scan in scans:
        for kind in KINDS:
            count, where = scan[kind]
            counts[kind] += count
            positions[kind].extend(where)
    places = {kind: [{dim: _plain(coords[dim][i]) for dim, i in zip(dims, p, strict=True)}
                     for p in sorted(positions[kind])[:PLACES_PER_KIND]] for kind in KINDS}
    return ValueReport(variable, counts, places, total)


def _plain(value: Any) -> Any:
    item = value.item() if hasattr(value, "item") else value
    return str(item) if isinstance(item, (bytes, np.datetime64)) else item


def value_report(ds: xr.Dataset, variable: str = "signal") -> ValueReport:
    """Count and locate NaN, +inf and -inf in ``ds[variable]`` (one pass over the data)."""
    report: ValueReport = dask.compute(lazy_value_report(ds, variable))[0]
    return report


def check_values(ds: xr.Dataset, variable: str = "signal", policy: str = "report",
                 allow: tuple[str, ...] = ()) -> ValueReport | None:
    """Apply ``policy`` ("report", "reject" or "ignore") to non-finite values.

    ``allow`` names kinds that are expected (e.g. ``("nan",)`` where a step
    fills gaps); only the others make "reject" raise.
    """
    if policy == "ignore":
        return None
    if policy not in ("report", "reject"):
        raise DatasetError(f"policy must be 'report', 'reject' or 'ignore', not {policy!r}")
    report = value_report(ds, variable)
    if policy == "reject" and any(report.counts[k] for k in KINDS if k not in allow):
        raise DatasetError(f"non-finite values: {report.summary()}",
                           path=str(ds.attrs.get("source")) if "source" in ds.attrs else None,
                           variable=variable)
    return report
