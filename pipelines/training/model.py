"""A trained model in one portable file, predicting with NumPy alone (no cluster)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..array_module import array_module
from ..errors import ModelFileError
from .network import Network, Params

FORMAT = "suanli-model/2"


@dataclass
class Model:
    """A network's weights plus everything needed to apply them.

    ``feature_mean`` and ``feature_std`` standardise raw features; ``pipeline``
    records the steps that made the features, so predictions can be traced.
    """

    network: Network
    params: Params
    feature_names: list[str]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    classes: list[str]
    kind: str = "softmax"
    pipeline: dict[str, Any] = field(default_factory=dict)
    #: What steps fitted on the training data (``rocket_features.biases``), given
    #: back to those steps when the model predicts, so new data gets the same features.
    fitted: dict[str, np.ndarray] = field(default_factory=dict)

    def outputs(self, X: Any) -> Any:
        """Scores (classification) or predictions (regression) for raw feature rows."""
        xp = array_module(X)
        mean = xp.asarray(self.feature_mean, dtype=X.dtype)
        std = xp.asarray(self.feature_std, dtype=X.dtype)
        return self.network.outputs(self.params, (X - mean) / std)

    def predict(self, X: Any) -> Any:
        """Class codes (indices into ``classes``) or predicted values for raw feature rows."""
        scores = self.outputs(X)
        if self.network.task == "classification":
            return scores.argmax(axis=1)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def save(self, path: str | Path) -> Path:
        """Write the model as one ``.npz`` file (arrays plus JSON metadata)."""
        target = Path(path)
        meta = {"format": FORMAT, "kind": self.kind, "task": self.network.task,
                "layer_sizes": list(self.network.layer_sizes),
                "feature_names": self.feature_names, "classes": self.classes,
                "pipeline": self.pipeline}
        arrays: dict[str, Any] = {f"param_{k}": v for k, v in self.params.items()}
        arrays.update({f"fitted_{k}": v for k, v in self.fitted.items()})
        arrays.update(feature_mean=self.feature_mean, feature_std=self.feature_std,
                      meta=np.array(json.dumps(meta)))
        with target.open("wb") as handle:
            np.savez(handle, **arrays)
        return target


def load_model(path: str | Path) -> Model:
    """Read a model written by :meth:`Model.save`."""
    try:
        opened = np.load(Path(path), allow_pickle=False)
        meta = json.loads(str(opened["meta"]))
    except (OSError, ValueError, KeyError) as error:  # not an .npz, or not ours
        raise ModelFileError(f"{path}: not a suanli model file ({error})") from error
    with opened as data:
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not a suanli model file of format {FORMAT} "
                             f"(found {meta.get('format')!r})")
        params = {k.removeprefix("param_"): data[k] for k in data.files
                  if k.startswith("param_")}
        return Model(network=Network(meta["task"], tuple(meta["layer_sizes"])), params=params,
                     feature_names=list(meta["feature_names"]),
                     feature_mean=data["feature_mean"], feature_std=data["feature_std"],
                     classes=list(meta["classes"]), kind=meta["kind"],
                     pipeline=meta.get("pipeline", {}),
                     fitted={k.removeprefix("fitted_"): data[k] for k in data.files
                             if k.startswith("fitted_")})
