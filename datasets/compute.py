"""Computing lazy work, with progress (datasets/progress.py) when asked."""

from __future__ import annotations

from typing import Any

import dask

from .progress import compute_with_progress, local_progress


def compute(*collections: Any, progress: bool = False, label: str = "computing"
            ) -> tuple[Any, ...]:
    """Compute ``collections`` (as :func:`dask.compute`), showing progress if asked.

    With a distributed client the progress is distributed's own (a widget in
    notebooks, a bar on a terminal) or a few lines in a log; without one, dask's
    local ProgressBar or the same lines. ``label`` names the work in those lines.
    """
    if not progress:
        return tuple(dask.compute(*collections))
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        with local_progress(label):
            return tuple(dask.compute(*collections))
    return compute_with_progress(client, collections, label)
