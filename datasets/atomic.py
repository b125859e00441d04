"""Outputs that appear complete or not at all: a hidden staging copy, swapped in.

A writer fills ``staging_for(target)`` (a hidden sibling), adds its manifest,
then calls :func:`swap_into_place`. The previous output is kept until the new
one is in place; if a writer dies between the two renames of the swap,
:func:`recover_interrupted_swap` (run by every read and write) puts it back.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from .errors import DatasetError
from .storage import local_output


def staging_for(path: str | Path, overwrite: bool) -> tuple[Path, Path]:
    """``(target, staging)`` for a new output at ``path``; refuses to clobber one unasked."""
    target = local_output(path)
    recover_interrupted_swap(target)
    if target.exists() and not overwrite:
        raise DatasetError("output exists; pass overwrite=True to replace it", path=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    return target, target.with_name(f".{target.name}.writing-{uuid.uuid4().hex[:8]}")


def recover_interrupted_swap(target: Path) -> None:
    """Put back the previous output if a swap was killed between its two renames."""
    if target.exists():
        return
    retired = sorted(target.parent.glob(f".{target.name}.replaced-*"))
    if retired:
        retired[-1].rename(target)


def swap_into_place(staging: Path, target: Path) -> None:
    """Move a complete ``staging`` output to ``target``, keeping the old one until then."""
    if not target.exists():
        staging.rename(target)
        return
    retired = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex[:8]}")
    target.rename(retired)
    try:
        staging.rename(target)
    except OSError:
        retired.rename(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
