"""A trained model in one portable file, predicting with NumPy alone (no cluster)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..array_module import array_module
from .softmax import logits, probabilities

FORMAT = "suanli-model/1"


@dataclass
class Model:
    """Softmax regression weights plus everything needed to apply them.

    ``feature_mean`` and ``feature_std`` standardise raw features; ``pipeline``
    records the steps that made the features, so predictions can be traced.
    """

    weights: np.ndarray
    bias: np.ndarray
    feature_names: list[str]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    classes: list[str]
    kind: str = "softmax"
    pipeline: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities for raw feature rows (NumPy or CuPy)."""
        xp = array_module(X)
        mean = xp.asarray(self.feature_mean, dtype=X.dtype)
        std = xp.asarray(self.feature_std, dtype=X.dtype)
        standardised = (X - mean) / std
        return probabilities(logits(standardised, xp.asarray(self.weights, dtype=X.dtype),
                                    xp.asarray(self.bias, dtype=X.dtype)))

    def predict(self, X: Any) -> Any:
        """Class codes (indices into ``classes``) for raw feature rows."""
        return self.predict_proba(X).argmax(axis=1)

    def save(self, path: str | Path) -> Path:
        """Write the model as one ``.npz`` file (arrays plus JSON metadata)."""
        target = Path(path)
        meta = {"format": FORMAT, "kind": self.kind, "feature_names": self.feature_names,
                "classes": self.classes, "pipeline": self.pipeline}
        with target.open("wb") as handle:
            np.savez(handle, weights=self.weights, bias=self.bias,
                     feature_mean=self.feature_mean, feature_std=self.feature_std,
                     meta=np.array(json.dumps(meta)))
        return target


def load_model(path: str | Path) -> Model:
    """Read a model written by :meth:`Model.save`."""
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a suanli model file (format {meta.get('format')!r})")
        return Model(weights=data["weights"], bias=data["bias"],
                     feature_names=list(meta["feature_names"]),
                     feature_mean=data["feature_mean"], feature_std=data["feature_std"],
                     classes=list(meta["classes"]), kind=meta["kind"],
                     pipeline=meta.get("pipeline", {}))
