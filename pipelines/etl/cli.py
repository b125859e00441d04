"""``suanli etl``: run a pipeline's features partition by partition, and report.

Exit codes: 0 every planned partition is done (or had no input yet: skipped); 1
one or more partitions failed (the others ran; their failures are recorded under
``ROOT/_etl/failed``), or the run lost its lease; 2 bad input, found before anything
ran; 3 another run holds the output root's lease (named, with its age): nothing ran.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from suanli.command import EXIT_FAILED, exit_code, log_line, parse_assignments
from suanli.errors import SuanliError


class _RunByDefault(click.Group):
    """``suanli etl PIPELINE ...`` runs; ``suanli etl status ROOT`` reports."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("etl", cls=_RunByDefault)
def etl_group() -> None:
    """Scheduled ETL: PIPELINE's features per partition (suanli etl PIPELINE --source ...
    --output ... --partition KEY | --since A --until B), and their state (suanli etl
    status ROOT)."""


@etl_group.command("run")
@click.argument("pipeline")
@click.option("--source", required=True, metavar="TEMPLATE",
              help="Where a partition's files are: raw/{date}/*.parquet, "
                   "landing/{date:%Y/%m/%d}/*.nc, sensors/{hour:%Y-%m-%dT%H}.csv.gz.")
@click.option("--output", required=True, metavar="ROOT",
              help="The root the partitions' folders go under (local or object storage).")
@click.option("--format", "output_format", type=click.Choice(["zarr", "parquet"]),
              default="zarr", show_default=True,
              help="What each partition's features are written as: a Zarr store, or a "
                   "Parquet table with a row per unit and window (for SQL engines).")
@click.option("--partition", help="One partition's key: 2024-03-01 (or 2024-03-01T05).")
@click.option("--since", help="The first partition of a range (a backfill).")
@click.option("--until", help="The last partition of the range (included).")
@click.option("--cluster", "cluster_name", help="Cluster kind or profile (default: config).")
@click.option("--force", is_flag=True, help="Rerun done and stale partitions too.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan (done, stale, missing, failed, skipped) and run nothing.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a pipeline parameter, as for 'suanli run'. Repeatable.")
@click.option("--wait", default="0s", show_default=True, metavar="DURATION",
              help="If another run holds the output root's lease, wait this long for it "
                   "(then exit 3, naming it).")
@click.option("--takeover-after", default="5 minutes", show_default=True,
              metavar="DURATION",
              help="Take over a lease whose heartbeat is this old (its runner was killed).")
@click.option("--parallel", type=click.IntRange(min=1), default=2, show_default=True,
              help="Partitions computed at once on the cluster.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True,
              help="json: messages and errors as JSON lines on standard error, the result "
                   "as one JSON object on standard output (for cron, systemd, log "
                   "collectors).")
def run_command(pipeline: str, source: str, output: str, output_format: str,
                partition: str | None,
                since: str | None, until: str | None, cluster_name: str | None, force: bool,
                dry_run: bool, assignments: tuple[str, ...], wait: str, takeover_after: str,
                parallel: int, log_format: str) -> None:
    """Compute PIPELINE's features for each planned partition that needs it."""
    from dask.utils import parse_timedelta

    from .backfill import etl

    try:
        waiting, takeover = parse_timedelta(wait), parse_timedelta(takeover_after)
    except (ValueError, KeyError, TypeError):
        raise click.BadParameter(f"{wait!r} or {takeover_after!r} is not a duration such "
                                 f"as 30s or 5 minutes") from None
    as_json = log_format == "json"
    try:
        result = etl(pipeline, source, output, format=output_format, partition=partition,
                     since=since, until=until, cluster=cluster_name, force=force, dry_run=dry_run,
                     overrides=parse_assignments(assignments), wait=float(waiting or 0),
                     takeover_after=float(takeover or 0), parallel=parallel,
                     say=lambda message: log_line(as_json, "message", message=message))
    except SuanliError as error:
        log_line(as_json, "error", message=f"error: {error}", exit_code=exit_code(error))
        sys.exit(exit_code(error))
    if as_json:
        click.echo(json.dumps({"event": "result", "pipeline": result.pipeline,
                               "root": result.root, "ok": result.ok,
                               "counts": result.counts(), "report": result.report,
                               "partitions": result.partitions}, default=str))
    else:
        click.echo(result.summary())
    if not result.ok:
        sys.exit(EXIT_FAILED)


@etl_group.command("status")
@click.argument("root")
@click.option("--json", "as_json", is_flag=True, help="JSON, for monitoring.")
def status_command(root: str, as_json: bool) -> None:
    """Every partition under ROOT and its state, read from storage alone."""
    from .status import etl_status

    status: dict[str, Any] = etl_status(root)
    if as_json:
        click.echo(json.dumps(status, default=str))
        return
    counts = ", ".join(f"{n} {state}" for state, n in sorted(status["counts"].items()))
    click.echo(f"{root}: {counts or 'no partitions'}")
    if status["last"]:
        click.echo(f"last written: {status['last']['partition']} at {status['last']['finished']}")
    lease = status["lease"]
    if lease:
        click.echo(f"lease: token {lease['token']}, {lease['state']}, {lease.get('pipeline')} "
                   f"by {lease.get('owner')} on {lease.get('host')} (pid {lease.get('pid')}), "
                   f"last heartbeat {lease['heartbeat_age']:.0f} s ago")
    for p in status["partitions"]:
        detail = p.get("error") or (f"{p['seconds']:.1f} s, {p['inputs']} input file(s)"
                                    if p.get("seconds") is not None else "")
        click.echo(f"  {p['partition']:<22} {p['state']:<7} {detail}")
