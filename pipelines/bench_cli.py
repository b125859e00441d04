"""``suanli bench``: measure a pipeline on your own cluster (``scaling``)."""

from __future__ import annotations

import json
import sys

import click

from suanli.command import EXIT_FAILED, fail, parse_assignments
from suanli.errors import SuanliError


@click.group("bench")
def bench_group() -> None:
    """Measure a pipeline on your own data and cluster."""


def _counts(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of whole numbers such as 1,2,4,8",
                                 param_hint="--workers") from None


@bench_group.command("scaling")
@click.argument("pipeline")
@click.option("--dataset", help="Dataset URI or path (default: the pipeline's own). Weak "
              "scaling gives K workers K/Kmax of its units.")
@click.option("--cluster", "cluster_name",
              help="Cluster kind or profile (default: config); each point starts its own.")
@click.option("--workers", "workers_text", default="1,2", show_default=True,
              help="Worker counts to measure, comma-separated.")
@click.option("--mode", type=click.Choice(["strong", "weak", "both"]), default="strong",
              show_default=True,
              help="strong: the same data at every size; weak: data growing with K.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per point (median and spread are reported).")
@click.option("--output", type=click.Path(),
              help="Where scaling.json, scaling.md, scaling.png and the performance "
                   "reports go (default: runs/scaling-NAME-TIME).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a pipeline parameter, as for 'suanli run'. Repeatable.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=0.5,
              show_default=True, help="Efficiency under which more workers no longer pay.")
@click.option("--warmup/--no-warmup", default=True, show_default=True,
              help="One unmeasured run first (compiles and caches the kernels).")
@click.option("--dry-run", is_flag=True,
              help="Show the points (data and cluster of each) and start nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print scaling.json's figures as JSON.")
def scaling_command(pipeline: str, dataset: str | None, cluster_name: str | None,
                    workers_text: str, mode: str, repeats: int, output: str | None,
                    assignments: tuple[str, ...], threshold: float, warmup: bool,
                    dry_run: bool, as_json: bool) -> None:
    """Speedup, efficiency and where the time goes for PIPELINE on 1, 2, ... workers.

    Exit codes: 0 measured, and every point computed what the first did; 1 a run
    failed, or a point computed different features or metrics (the figures are still
    written, marked invalid); 2 bad input, found before anything started.
    """
    from .scaling_sweep import plan_scaling, scaling

    counts = _counts(workers_text)
    overrides = parse_assignments(assignments)
    try:
        if dry_run:
            for point in plan_scaling(pipeline, dataset, cluster_name, counts, mode=mode,
                                      overrides=overrides):
                click.echo(point.describe())
            return
        result = scaling(pipeline, dataset, cluster_name, counts, mode=mode,
                         repeats=repeats, output=output, overrides=overrides,
                         threshold=threshold, warmup=warmup,
                         say=lambda message: click.echo(message, err=True))
    except SuanliError as error:
        fail(error)
    click.echo(json.dumps(result.record, indent=2, default=str) if as_json
               else result.summary())
    if not result.valid:
        sys.exit(EXIT_FAILED)
