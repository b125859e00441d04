"""Partition keys and the source template that names each partition's files.

A template holds one field, ``{date}`` (daily partitions) or ``{hour}`` (hourly),
optionally with a strftime format: ``raw/{date}/*.parquet``,
``landing/{date:%Y/%m/%d}/*.nc``, ``sensors/{hour:%Y-%m-%dT%H}.csv.gz``. A
partition's key is its start in ISO form (``2024-03-01``, ``2024-03-01T05``),
whatever the template's format; its output goes to ``ROOT/date=2024-03-01``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import PipelineDefinitionError

#: Field name -> (step between partitions, default format, key format).
PERIODS = {"date": (timedelta(days=1), "%Y-%m-%d", "%Y-%m-%d"),
           "hour": (timedelta(hours=1), "%Y-%m-%dT%H", "%Y-%m-%dT%H")}


@dataclass(frozen=True)
class PartitionTemplate:
    """A source template: where a partition's files are, by its key."""

    template: str
    field: str
    format: str

    @classmethod
    def parse(cls, template: str) -> PartitionTemplate:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(template)
                  if name is not None]
        if len(fields) != 1 or fields[0][0] not in PERIODS:
            raise PipelineDefinitionError(
                f"source template {template!r} must name exactly one partition field, "
                f"{{date}} or {{hour}} (with an optional format, {{date:%Y/%m/%d}}); "
                f"it names {', '.join('{' + n + '}' for n, _ in fields) or 'none'}")
        name, spec = fields[0]
        return cls(template, name, spec or PERIODS[name][1])

    @property
    def step(self) -> timedelta:
        return PERIODS[self.field][0]

    def key(self, moment: datetime) -> str:
        """The partition key of the partition that starts at ``moment``."""
        return moment.strftime(PERIODS[self.field][2])

    def start(self, key: str) -> datetime:
        """The start of partition ``key`` (accepts a date for an hourly template's day)."""
        for form in (PERIODS[self.field][2], "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"):
            try:
                return datetime.strptime(key, form)
            except ValueError:
                continue
        raise PipelineDefinitionError(
            f"partition key {key!r} is not a {self.field} such as "
            f"{datetime(2024, 3, 1, 5).strftime(PERIODS[self.field][2])}")

    def source(self, key: str) -> str:
        """The template with partition ``key`` filled in: its files' path or glob."""
        moment = self.start(key)
        pattern = re.compile(r"\{" + self.field + r"(:[^}]*)?\}")
        return pattern.sub(lambda _: moment.strftime(self.format), self.template)

    def folder(self, key: str) -> str:
        """The partition's folder under the output root (Hive style: ``date=2024-03-01``)."""
        return f"{self.field}={self.key(self.start(key))}"

    def keys(self, since: str, until: str) -> list[str]:
        """Every partition from ``since`` to ``until``, both included."""
        first, last = self.start(since), self.start(until)
        if last < first:
            raise PipelineDefinitionError(f"--until {until} is before --since {since}")
        count = int((last - first) / self.step) + 1
        if count > 100_000:
            raise PipelineDefinitionError(f"{count} partitions from {since} to {until}: "
                                          f"at most 100,000 at once")
        return [self.key(first + i * self.step) for i in range(count)]
