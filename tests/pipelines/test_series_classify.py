"""series-classify: MiniRocket features and exact ridge, on series whose classes differ
in shape and timing rather than spectrum, against 1-NN and sensor-faults' features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from suanli import cluster, datasets, pipelines

SHAPES = "synthetic://shapes?units=400&seed=0"


def _one_nearest_neighbour(ds: xr.Dataset, split: np.ndarray) -> float:
    """1-NN (Euclidean) on each series z-normalised per channel: the usual baseline."""
    x = ds.signal.values
    z = ((x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)).reshape(
        len(x), -1)
    y = ds.label.values
    train, test = split == "train", split == "test"
    distances = ((z[test][:, None, :] - z[train][None, :, :]) ** 2).sum(axis=-1)
    return float((y[train][distances.argmin(axis=1)] == y[test]).mean())


def test_series_classify_beats_one_nearest_neighbour_where_shape_matters(
        local_cluster: cluster.Cluster, tmp_path: Path) -> None:
    shaped = pipelines.run("series-classify", cluster=local_cluster, output=tmp_path / "rocket")
    spectral = pipelines.run("sensor-faults", SHAPES, cluster=local_cluster,
                             output=tmp_path / "spectral")
    split = datasets.open(str(shaped.outputs["features"]))["split"].values
    baseline = _one_nearest_neighbour(datasets.open(SHAPES).load(), split)
    assert shaped.metrics["accuracy"] >= baseline >= 0.85, (shaped.metrics, baseline)
    # Band powers and window statistics cannot tell a late bump from an early one.
    assert spectral.metrics["accuracy"] < 0.75
    assert shaped.manifest["resolved"] == {"window.size": 150}
    model = pipelines.load_model(shaped.output / "model.npz")
    assert model.kind == "ridge" and len(model.feature_names) == 9_996
    # The biases fitted in the run travel with the model: predicting the test units
    # again, on one machine, gives the run's own score.
    assert model.fitted["rocket_features.biases"].shape == (9_996,)
    predicted = pipelines.predict_dataset(model, datasets.open(SHAPES))
    test = split == "test"
    truth = predicted["label"].values[test]
    assert (predicted["prediction"].values[test, 0] == truth).mean() == \
        shaped.metrics["accuracy"]
