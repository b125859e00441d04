"""Block maths: NumPy or CuPy blocks in, blocks out; no xarray, no Dask, no registry.

Each module holds one computation, its compiled kernel (Numba, on NumPy float
blocks) beside its array-module reference (any array module: CuPy on GPUs),
tested side by side (``tests/pipelines/compute/``):

- :mod:`.layout`: memory layouts and cache-sized batches and tiles;
- :mod:`.gaps`: filling NaN runs;
- :mod:`.moments`: per-series moments and standardising;
- :mod:`.window_features`: window statistics and spectral band powers;
- :mod:`.fused`: gaps, z-score and window features in two reads of a chunk;
- :mod:`.sampling`: stratified samples of units.

The steps (:mod:`suanli.pipelines.steps`) wrap these in Dask graphs over xarray.
"""

from __future__ import annotations

from . import fused, gaps, layout, moments, sampling, window_features

__all__ = ["fused", "gaps", "layout", "moments", "sampling", "window_features"]
