"""The one tree of exceptions suanli raises.

Every error is a :class:`SuanliError`. Those that mean the input or the usage
is wrong, found before any work ran, are also :class:`InputError`s; the rest
mean work was tried and failed. ``cluster``, ``datasets`` and ``pipelines``
each export their part of the tree, and the ``suanli`` command turns any of
them into an exit code in one place (:func:`suanli.command.exit_code`).

Defined here, in one module that imports nothing, so that ``cluster`` and
``datasets`` share a root without importing each other.
"""

from __future__ import annotations


class SuanliError(Exception):
    """The root: anything suanli reports as an error of its own."""


class InputError(SuanliError):
    """Bad usage or input (a field, file, parameter or key), found before work ran."""


# --- cluster ---------------------------------------------------------------


class ClusterError(SuanliError):
    """A cluster could not be planned, started or reached."""


class ClusterSpecError(ClusterError, InputError, ValueError):
    """A cluster spec field (or a profile, a kind) holds a value that is not allowed.

    The message names the field, the value given and what is allowed.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"cluster spec field {field!r} = {value!r} is not allowed: {allowed}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, self.value, self.allowed))


class ClusterUsageError(ClusterError, InputError):
    """A cluster command asked for something that is not there or not allowed
    (an unknown cluster id, certificate files it would overwrite)."""


class SchedulerLost(ClusterError):
    """The scheduler stopped answering while work was running on it."""


# --- datasets --------------------------------------------------------------


class DatasetError(InputError):
    """Data that cannot be read, written or used as asked.

    The message names what is wrong and where: the file or store, and where it
    applies the variable, column or chunk; the same facts are kept as attributes
    so callers can act on them.
    """

    def __init__(self, message: str, *, path: str | None = None, variable: str | None = None,
                 column: str | None = None, chunk: tuple[int, ...] | None = None) -> None:
        self.path = path
        self.variable = variable
        self.column = column
        self.chunk = chunk
        where = [f"{name} {value!r}" for name, value in
                 (("path", path), ("variable", variable), ("column", column), ("chunk", chunk))
                 if value is not None]
        self.message = message
        super().__init__(f"{message} ({', '.join(where)})" if where else message)

    def __reduce__(self) -> tuple[object, ...]:
        # Raised inside tasks on workers: it must survive pickling whole.
        return (_rebuild_dataset_error, (type(self), self.message, self.path, self.variable,
                                         self.column, self.chunk))


def _rebuild_dataset_error(kind: type[DatasetError], message: str, path: str | None,
                           variable: str | None, column: str | None,
                           chunk: tuple[int, ...] | None) -> DatasetError:
    return kind(message, path=path, variable=variable, column=column, chunk=chunk)


# --- pipelines -------------------------------------------------------------


class PipelineError(SuanliError):
    """A pipeline run failed."""


class PipelineDefinitionError(PipelineError, InputError, ValueError):
    """An unknown pipeline, step, parameter or ``--set`` key, or a bad value; found
    before anything runs."""


class DeviceError(PipelineDefinitionError):
    """The requested device (``cpu``, ``gpu``) cannot be used on this cluster."""


class RunOutputError(PipelineError, InputError):
    """The output directory holds something that must not be overwritten."""


class LeaseHeld(PipelineError):
    """Another ETL run holds the output root's lease (exit code 3): its holder and age."""


class LeaseLost(PipelineError):
    """This ETL run's lease was taken over (its heartbeat stopped too long): it must not
    commit, and stops."""


class ModelFileError(PipelineError, InputError, ValueError):
    """A model file that is not one suanli wrote, or does not fit its own pipeline."""


class StepError(PipelineError):
    """A step failed while running; ``step`` names it."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        self.detail = message
        super().__init__(f"step {step!r} failed: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.step, self.detail))


__all__ = [
    "ClusterError",
    "ClusterSpecError",
    "ClusterUsageError",
    "DatasetError",
    "DeviceError",
    "InputError",
    "LeaseHeld",
    "LeaseLost",
    "ModelFileError",
    "PipelineDefinitionError",
    "PipelineError",
    "RunOutputError",
    "SchedulerLost",
    "StepError",
    "SuanliError",
]
