"""Computing lazy work with a progress bar when a distributed client is active."""

from __future__ import annotations

from typing import Any

import dask


def compute(*collections: Any, progress: bool = False) -> tuple[Any, ...]:
    """Compute ``collections`` (as :func:`dask.compute`), showing progress if asked.

    With a distributed client the bar is distributed's own (a widget in
    notebooks, text in a terminal); without one, dask's local ProgressBar.
    """
    if not progress:
        return tuple(dask.compute(*collections))
    try:
        from distributed import default_client
        from distributed import progress as show_progress
        client = default_client()
    except (ImportError, ValueError):
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return tuple(dask.compute(*collections))
    futures = client.compute(list(collections))
    show_progress(futures)
    return tuple(client.gather(futures))
