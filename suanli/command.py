"""What every ``suanli`` subcommand shares: ``--set`` values and exit codes.

Exit codes, for the whole command: 0 success; 1 work was tried and failed
(a run, a cluster that would not start, a verification that found damage); 2
bad usage or input, found before anything ran (:class:`~suanli.errors.InputError`:
an unknown pipeline, step, parameter, key, profile or file, a bad value, an
occupied output); 3 ``suanli etl`` found another run holding the output root's
lease (:class:`~suanli.errors.LeaseHeld`), and did nothing.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
import yaml

from .errors import InputError, LeaseHeld, SuanliError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
#: ``suanli etl``: another run holds the output root's lease; nothing was done.
EXIT_BUSY = 3


def exit_code(error: BaseException) -> int:
    """The command's exit code for ``error``: 2 for bad input, 3 for a lease another
    run holds, 1 for anything else."""
    if isinstance(error, LeaseHeld):
        return EXIT_BUSY
    return EXIT_BAD_INPUT if isinstance(error, InputError) else EXIT_FAILED


def fail(error: SuanliError, *, message: str | None = None) -> NoReturn:
    """Print ``error: ...`` to standard error and exit with :func:`exit_code`."""
    click.echo(message or f"error: {error}", err=True)
    sys.exit(exit_code(error))


def parse_assignments(pairs: tuple[str, ...], form: str = "KEY=VALUE") -> dict[str, Any]:
    """``--set`` options as a mapping; values are YAML (``4``, ``true``, ``[a, b]``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not {form}", param_hint="--set")
        out[key.strip()] = yaml.safe_load(raw) if raw else ""
    return out


def log_line(as_json: bool, event: str, *, message: str, **fields: object) -> None:
    """A message to standard error: as it is, or as one JSON line (``--log-format json``)."""
    import json

    click.echo(json.dumps({"event": event, "message": message, **fields}, default=str)
               if as_json else message, err=True)
