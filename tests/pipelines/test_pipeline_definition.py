from __future__ import annotations

from pathlib import Path

import pytest

from suanli.pipelines import Pipeline, PipelineDefinitionError, load_pipeline, pipeline_names


def test_sensor_faults_ships_and_round_trips() -> None:
    assert "sensor-faults" in pipeline_names()
    pipe = load_pipeline("sensor-faults")
    assert [s.name for s in pipe.steps][:3] == ["fill_gaps", "zscore", "window"]
    assert Pipeline.from_mapping(pipe.to_mapping()) == pipe


def test_overrides_change_steps_and_training() -> None:
    pipe = load_pipeline("sensor-faults").with_overrides(
        {"window.size": 512, "train.epochs": 7, "dataset": "x.zarr"})
    assert dict(next(s for s in pipe.steps if s.name == "window").params) == {"size": 512}
    assert pipe.train is not None and pipe.train.epochs == 7
    assert pipe.dataset == "x.zarr"


@pytest.mark.parametrize(("key", "fragment"), [
    ("window.colour", "settable keys"),
    ("nostep.size", "settable keys"),
    ("train.momentum_of_doom", "settable keys"),
    ("epochs", "settable keys"),
])
def test_unknown_set_keys_list_the_settable_ones(key: str, fragment: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=fragment) as info:
        load_pipeline("sensor-faults").with_overrides({key: 1})
    assert key in str(info.value) and "window.size" in str(info.value)


def test_unknown_pipeline_step_and_parameter() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"shipped pipelines: .*sensor-faults"):
        load_pipeline("sensor-fault")
    with pytest.raises(PipelineDefinitionError, match=r"unknown step 'wndow'.*window"):
        Pipeline.from_mapping({"name": "x", "steps": [{"wndow": {}}]})
    with pytest.raises(PipelineDefinitionError, match=r"no parameter 'sise'.*size"):
        Pipeline.from_mapping({"name": "x", "steps": [{"window": {"sise": 3}}]})
    with pytest.raises(PipelineDefinitionError, match="train has no parameter 'epoch'"):
        Pipeline.from_mapping({"name": "x", "steps": [], "train": {"epoch": 3}})


def test_user_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nsteps:\n  - zscore\n  - window: {size: 64}\n")
    pipe = load_pipeline(path)
    assert pipe.name == "mine" and pipe.train is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(PipelineDefinitionError, match="not valid YAML"):
        load_pipeline(bad)


def test_training_options_are_checked_up_front() -> None:
    pipe = load_pipeline("sensor-faults")
    with pytest.raises(PipelineDefinitionError, match="patience needs a validation_fraction"):
        pipe.with_overrides({"train.patience": 5})
    with pytest.raises(PipelineDefinitionError, match="local_steps needs a batch_size"):
        pipe.with_overrides({"train.local_steps": 4})
    with pytest.raises(PipelineDefinitionError, match="schedule 'linear' is unknown"):
        pipe.with_overrides({"train.schedule": "linear"})
    ok = pipe.with_overrides({"train.local_steps": 4, "train.batch_size": 256,
                              "train.optimizer": "sgd", "train.model": "mlp",
                              "train.hidden": [8, 8]})
    assert ok.train is not None and ok.train.hidden == (8, 8)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("train.optimizer", "rmsprop", r"optimizer 'rmsprop' is unknown; choose from sgd, adam"),
    ("train.learning_rate", "fast", r"learning_rate must be a number, got 'fast'"),
    ("train.epochs", 2.5, r"epochs must be a whole number"),
    ("train.l2", -1, r"l2 must be >= 0"),
    ("window.size", "a parsec", r"window: size 'a parsec' is not a number of samples"),
    ("window.size", 2.5, r"window: size is a number of samples, 'series', a duration"),
    ("window_features.bands", "wide", r"bands is a list of \[low, high\) in Hz, auto"),
    ("window_features.bands", {"nyquist_fraction": [[0.5, 1.5]]}, r"0 <= low < high <= 1"),
    ("window_features.bands", {"nyquist_fraction": [["1/0", 1]]}, r"not a number or a frac"),
    ("window.size", 1, r"window: size must be >= 2"),
    ("fill_gaps.max_gap", 0, r"max_gap must be >= 1"),
    ("window_features.taper", "kaiser", r"taper must be one of"),
    ("window_features.stats", ["mean", "median"], r"unknown stats \['median'\]"),
    ("window_features.bands", [[10, 5]], r"0 <= low < high"),
    ("window_features.log", "yes", r"log must be true or false"),
    ("split.test_fraction", 1.5, r"test_fraction must be between 0 and 1"),
])
def test_every_value_is_checked_when_the_pipeline_meets_its_overrides(
        key: str, value: object, message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        load_pipeline("sensor-faults").with_overrides({key: value})


def test_data_dependent_mistakes_fail_before_a_cluster_starts(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    from suanli import cluster, pipelines

    def no_cluster(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(cluster, "start", no_cluster)
    source = "synthetic://telemetry?units=4&minutes=1&seed=0"  # 1024 Hz, 61,440 samples
    with pytest.raises(PipelineDefinitionError, match=r"at most the series length"):
        pipelines.run("sensor-faults", source, output=tmp_path / "run",
                      overrides={"window.size": 100_000})
    with pytest.raises(PipelineDefinitionError, match=r"above the Nyquist frequency"):
        pipelines.run("sensor-faults", source, output=tmp_path / "run",
                      overrides={"window_features.bands": [[1, 10], [600, 900]]})
    assert not any(tmp_path.iterdir())


def test_evaluate_names_the_metrics_that_are_kept() -> None:
    spec = load_pipeline("sensor-faults").to_mapping()
    pipe = Pipeline.from_mapping({**spec, "evaluate": {"metrics": ["accuracy"]}})
    assert pipe.evaluate == ("accuracy",)
    with pytest.raises(PipelineDefinitionError, match=r"softmax model is scored by accuracy"):
        Pipeline.from_mapping({**spec, "evaluate": {"metrics": ["rmse"]}})
    with pytest.raises(PipelineDefinitionError, match=r"unknown metrics \['auc'\]"):
        Pipeline.from_mapping({**spec, "evaluate": {"metrics": ["auc"]}})
