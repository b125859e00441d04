"""The ``suanli`` command.

Exit codes (:mod:`suanli.command`, for every subcommand): 0 success; 1 the run
failed; 2 bad usage or input (unknown pipeline, step, parameter or ``--set``
key, bad value, bad dataset, occupied output), found before anything ran.
"""

from __future__ import annotations

import json
import sys

import click
import numpy as np

from suanli.cluster.cli import cluster_group
from suanli.command import exit_code, fail, log_line, parse_assignments
from suanli.datasets.cli import datasets_group
from suanli.errors import InputError, SuanliError

from .bench_cli import bench_group
from .etl.cli import etl_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="suanli")
def main() -> None:
    """suanli: data-parallel pipelines on Dask clusters of any kind."""


main.add_command(cluster_group)
main.add_command(datasets_group)
main.add_command(bench_group)
main.add_command(etl_group)


@main.command("run")
@click.argument("pipeline")
@click.option("--dataset", help="Dataset URI or path (default: the pipeline's own).")
@click.option("--cluster", "cluster_name", help="Cluster kind or profile (default: config).")
@click.option("--output", type=click.Path(), help="Run directory (default: runs/NAME-TIME).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a parameter: STEP.PARAM, train.PARAM or dataset. Repeatable.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True,
              help="json: progress, messages, the result and errors as JSON lines (for "
                   "schedulers and log collectors).")
def run_command(pipeline: str, dataset: str | None, cluster_name: str | None,
                output: str | None, assignments: tuple[str, ...], log_format: str) -> None:
    """Run PIPELINE (a shipped name such as sensor-faults, or a YAML file)."""
    import dask.config

    from .runner import run

    as_json = log_format == "json"
    overrides = parse_assignments(assignments)
    try:
        with dask.config.set({"suanli.progress": "json"} if as_json else {}):
            result = run(pipeline, dataset=dataset, cluster=cluster_name, output=output,
                         overrides=overrides, progress=True,
                         say=lambda m: log_line(as_json, "message", message=m))
    except SuanliError as error:
        message = f"error: {error}" if isinstance(error, InputError) \
            else f"error: run failed: {error}"
        log_line(as_json, "error", message=message, exit_code=exit_code(error))
        sys.exit(exit_code(error))
    if as_json:
        click.echo(json.dumps({"event": "result", "pipeline": result.pipeline,
                               "output": str(result.output), "metrics": result.metrics,
                               "seconds": result.manifest["timings"]["total"]},
                              default=str))
    else:
        click.echo(result.summary())


@main.command("predict")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("dataset")
@click.option("--output", type=click.Path(), help="Write predictions here (Zarr).")
def predict_command(model: str, dataset: str, output: str | None) -> None:
    """Apply MODEL (a run's model.npz) to DATASET on this machine, without a cluster."""
    from suanli import datasets

    from .predict import predict_dataset
    from .training.model import load_model

    try:
        found = load_model(model)
        predictions = predict_dataset(found, datasets.open(dataset))
    except SuanliError as error:
        fail(error)
    values = predictions["prediction"].values.ravel()
    names, counts = np.unique(values[values != ""], return_counts=True)
    click.echo(f"{values.size} windows from {predictions.sizes['unit']} units")
    for name, count in zip(names, counts, strict=True):
        click.echo(f"  {name:<14} {count}")
    if "label" in predictions:
        truth = np.broadcast_to(predictions["label"].values[:, None]
                                if predictions["label"].ndim == 1
                                else predictions["label"].values, values.reshape(
                                    predictions["prediction"].shape).shape).ravel()
        click.echo(f"  accuracy against the dataset's labels: "
                   f"{float((truth == values).mean()):.3f}")
    if output:
        datasets.write(predictions, output)
        click.echo(f"predictions written to {output}")


@main.group("pipelines")
def pipelines_group() -> None:
    """Shipped pipelines and steps."""


@pipelines_group.command("list")
def list_pipelines() -> None:
    """List the shipped pipelines and the registered steps."""
    from .pipeline import load_pipeline, pipeline_names
    from .registry import get_step, step_names

    names = pipeline_names()
    width = max(map(len, names))
    for name in names:
        click.echo(f"{name:<{width}}  {load_pipeline(name).summary}")
    click.echo("\nsteps:")
    for name in step_names():
        click.echo(f"  {name:<16} {get_step(name).summary}")
    click.echo("\n'suanli pipelines show NAME' prints a pipeline's definition.")


@pipelines_group.command("show")
@click.argument("name")
def show_pipeline(name: str) -> None:
    """Print the YAML definition of shipped pipeline NAME (or a pipeline file), as is."""
    from .pipeline import load_pipeline, pipeline_source

    try:
        load_pipeline(name)  # checks it, and names the shipped ones if NAME is unknown
    except SuanliError as error:
        fail(error)
    click.echo(pipeline_source(name), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
