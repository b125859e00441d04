"""Progress of long work, shown the way the place it is read from needs it.

``suanli.progress`` in Dask config chooses (``DASK_SUANLI__PROGRESS=lines``, or
``suanli run --log-format json``):

- ``auto`` (default): distributed's widget in a notebook, a redrawn bar on a
  terminal, and ``lines`` where nobody watches (a log file, cron, CI);
- ``bar``: always the redrawn bar;
- ``lines``: one plain line per tenth of the work, on standard error;
- ``json``: the same, each line a JSON object (``"event": "progress"``);
- ``off``: nothing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask.config

from .errors import DatasetError

STYLES = ("auto", "bar", "lines", "json", "off")


def progress_style() -> str:
    """The configured style with ``auto`` resolved: ``bar``, ``lines``, ``json`` or ``off``."""
    style = dask.config.get("suanli.progress", "auto")
    if style not in STYLES:
        raise DatasetError(f"config key suanli.progress is {style!r}; expected one of "
                           f"{', '.join(STYLES)}")
    if style != "auto":
        return str(style)
    from distributed.diagnostics.progressbar import is_kernel

    return "bar" if is_kernel() or sys.stderr.isatty() else "lines"


class ProgressLines:
    """Reports ``done`` of ``total`` as a line each time another tenth is done."""

    def __init__(self, label: str, total: int, unit: str, style: str) -> None:
        self.label, self.total, self.unit, self.style = label, total, unit, style
        self.began = time.perf_counter()
        self.done = 0
        self.shown = -1  # tenths reported so far

    def update(self, done: int, total: int | None = None) -> None:
        self.total = total if total is not None else self.total
        self.done = done
        tenths = 10 * done // self.total if self.total else 10
        if tenths > self.shown:
            self.shown = tenths
            self._emit()

    def advance(self, count: int = 1) -> None:
        self.update(self.done + count)

    def _emit(self) -> None:
        elapsed = time.perf_counter() - self.began
        percent = 100 * self.done // self.total if self.total else 100
        if self.style == "json":
            line = json.dumps({"event": "progress", "stage": self.label, "percent": percent,
                               "done": self.done, "total": self.total, "unit": self.unit,
                               "elapsed_s": round(elapsed, 2)})
        else:
            line = (f"{self.label}: {percent:3d}% ({self.done}/{self.total} {self.unit}, "
                    f"{elapsed:.1f} s)")
        print(line, file=sys.stderr, flush=True)


def compute_with_progress(client: Any, collections: tuple[Any, ...], label: str
                          ) -> tuple[Any, ...]:
    """Compute on ``client``, with progress in the configured style."""
    style = progress_style()
    futures = client.compute(list(collections))
    if style == "bar":
        from distributed import progress

        progress(futures)
    elif style in ("lines", "json"):
        _task_lines(futures, label, style)
    return tuple(client.gather(futures))


def _task_lines(futures: list[Any], label: str, style: str) -> None:
    from distributed.diagnostics.progressbar import TextProgressBar

    lines = ProgressLines(label, 0, "tasks", style)

    class Lines(TextProgressBar):  # distributed's bar, drawn as a few lines
        def _draw_bar(self, remaining: int, all: int, **kwargs: Any) -> None:
            lines.update(all - remaining, all)

        def _draw_stop(self, **kwargs: Any) -> None:
            pass

    Lines(futures, interval="500ms")


@contextmanager
def local_progress(label: str) -> Iterator[None]:
    """Progress of work on Dask's local schedulers (no distributed client)."""
    style = progress_style()
    if style == "bar":
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            yield
    elif style in ("lines", "json"):
        from dask.callbacks import Callback

        lines = ProgressLines(label, 0, "tasks", style)

        def start_state(dsk: Any, state: Any) -> None:
            lines.total = sum(len(state[k]) for k in ("ready", "waiting", "running"))

        def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            lines.advance()

        with Callback(start_state=start_state, posttask=posttask):
            yield
    else:
        yield


def progress_steps(label: str, total: int, unit: str, enabled: bool = True) -> Any:
    """Something with ``update(n=1)`` and ``close()`` that shows ``total`` steps of a
    loop: tqdm's bar (a widget in notebooks), lines, or nothing when not ``enabled``."""
    style = progress_style() if enabled else "off"
    if style == "bar":
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=label, leave=False)
    return _Steps(ProgressLines(label, total, unit, style) if style != "off" else None)


class _Steps:
    def __init__(self, lines: ProgressLines | None) -> None:
        self.lines = lines

    def update(self, count: int = 1) -> None:
        if self.lines is not None:
            self.lines.advance(count)

    def close(self) -> None:
        pass
