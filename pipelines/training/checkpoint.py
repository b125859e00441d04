"""Training checkpoints: parameters, optimizer state and history in one file.

Written atomically (a temporary file, then ``os.replace``), so a run killed
while saving keeps the previous checkpoint. A ``fingerprint`` of the training
problem guards against resuming a different one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .network import Params


@dataclass
class TrainingState:
    """Where training stands after ``epoch`` (0-based) epochs have completed."""

    epoch: int
    params: Params
    optimizer: Params
    best_params: Params
    best_loss: float
    since_best: int
    loss: list[float]
    accuracy: list[float]
    validation_loss: list[float]


def save_checkpoint(path: Path, state: TrainingState, fingerprint: str) -> None:
    arrays: dict[str, Any] = {f"param/{k}": v for k, v in state.params.items()}
    arrays.update({f"optimizer/{k}": v for k, v in state.optimizer.items()})
    arrays.update({f"best/{k}": v for k, v in state.best_params.items()})
    meta = {"fingerprint": fingerprint, "epoch": state.epoch, "best_loss": state.best_loss,
            "since_best": state.since_best, "loss": state.loss, "accuracy": state.accuracy,
            "validation_loss": state.validation_loss}
    arrays["meta"] = np.array(json.dumps(meta))
    temporary = path.with_name(f".{path.name}.writing")
    with temporary.open("wb") as handle:
        np.savez(handle, **arrays)
    os.replace(temporary, path)


def load_checkpoint(path: Path, fingerprint: str) -> TrainingState | None:
    """The saved state, or None when there is none or it belongs to another problem."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta["fingerprint"] != fingerprint:
            return None

        def group(prefix: str) -> Params:
            return {k.split("/", 1)[1]: data[k] for k in data.files
                    if k.startswith(prefix + "/")}

        return TrainingState(epoch=meta["epoch"], params=group("param"),
                             optimizer=group("optimizer"), best_params=group("best"),
                             best_loss=meta["best_loss"], since_best=meta["since_best"],
                             loss=meta["loss"], accuracy=meta["accuracy"],
                             validation_loss=meta["validation_loss"])
