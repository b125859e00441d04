"""Which array library a block belongs to, without importing CuPy.

Step code calls :func:`array_module` on its input instead of importing CuPy, so
the same function runs on NumPy blocks on CPU workers and CuPy blocks on
dask-cuda workers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def array_module(array: Any) -> ModuleType:
    """``numpy`` or ``cupy``, whichever ``array`` comes from."""
    if type(array).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def fft_module(xp: ModuleType) -> Any:
    """FFT functions for ``xp``: SciPy's on NumPy (float32-native, ~5x numpy.fft); cuFFT on CuPy."""
    if xp is np:
        import scipy.fft

        return scipy.fft
    return xp.fft


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy copy of a NumPy or CuPy array (for small results: metrics, plots)."""
    if hasattr(array, "get"):
        return np.asarray(array.get())
    return np.asarray(array)
