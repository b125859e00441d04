"""One exception tree, each error's fields kept through pickling, and one exit-code map."""

from __future__ import annotations

import pickle

import pytest

from suanli import cluster, datasets, errors, pipelines
from suanli.command import EXIT_BAD_INPUT, EXIT_FAILED, exit_code


def test_every_package_error_is_a_suanli_error_and_exported() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SuanliError), name
    assert cluster.SuanliError is datasets.SuanliError is pipelines.SuanliError
    assert cluster.ClusterSpecError is errors.ClusterSpecError
    assert datasets.DatasetError is errors.DatasetError
    assert pipelines.StepError is errors.StepError
    assert pipelines.DeviceError is errors.DeviceError


@pytest.mark.parametrize(("error", "code"), [
    (errors.ClusterSpecError("workers", 0, "a whole number >= 1"), EXIT_BAD_INPUT),
    (errors.ClusterUsageError("no running cluster 'x'"), EXIT_BAD_INPUT),
    (errors.ClusterError("could not start"), EXIT_FAILED),
    (errors.SchedulerLost("gone"), EXIT_FAILED),
    (errors.DatasetError("bad chunk", path="a.zarr", chunk=(1, 2)), EXIT_BAD_INPUT),
    (errors.PipelineDefinitionError("unknown step"), EXIT_BAD_INPUT),
    (errors.DeviceError("no GPU"), EXIT_BAD_INPUT),
    (errors.RunOutputError("holds another run"), EXIT_BAD_INPUT),
    (errors.ModelFileError("not a model"), EXIT_BAD_INPUT),
    (errors.StepError("zscore", "worker died"), EXIT_FAILED),
    (errors.PipelineError("training diverged"), EXIT_FAILED),
])
def test_exit_codes_and_fields_survive_pickling(error: errors.SuanliError, code: int) -> None:
    assert exit_code(error) == code
    again = pickle.loads(pickle.dumps(error))  # raised in a task on a worker
    assert type(again) is type(error) and str(again) == str(error)
    assert vars(again) == vars(error)
