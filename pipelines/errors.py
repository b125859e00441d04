"""Exceptions raised by :mod:`suanli.pipelines`.

``PipelineError`` is the base; ``PipelineDefinitionError`` means the pipeline,
a step, a parameter or a ``--set`` key is wrong (nothing ran); ``StepError``
means a step failed while running and names it; ``RunOutputError`` means the
output directory cannot be used.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Something about a pipeline or its run went wrong."""


class PipelineDefinitionError(PipelineError, ValueError):
    """An unknown pipeline, step or parameter, or a bad value; found before anything runs."""


class StepError(PipelineError):
    """A step failed while running; ``step`` names it."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"step {step!r} failed: {message}")


class RunOutputError(PipelineError):
    """The output directory holds something that must not be overwritten."""
