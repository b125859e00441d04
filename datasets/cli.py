"""``suanli datasets ...``: the catalog, a dataset's facts, generated data, verification.

Exit codes as for the rest of ``suanli`` (:mod:`suanli.command`): 2 for bad
input, 1 for a failure.
"""

from __future__ import annotations

from typing import Any

import click
from dask.utils import format_bytes, parse_bytes

from suanli.command import EXIT_FAILED, fail

from .errors import DatasetError

#: Units each scenario generates by default when only a size is given.
DEFAULT_UNITS = {"telemetry": 40, "traffic": 200, "vitals": 100}


@click.group("datasets")
def datasets_group() -> None:
    """The dataset catalog, generated data and output verification."""


@datasets_group.command("list")
def list_command() -> None:
    """Catalog entries (Dask config suanli.datasets.catalog) and generators."""
    from .catalog import catalog
    from .generators import generator_names

    entries = catalog()
    if entries:
        click.echo("catalog:")
        for name, entry in sorted(entries.items()):
            click.echo(f"  {name:<20} {entry.get('uri', '?')}"
                       + (f"  ({entry['description']})" if entry.get("description") else ""))
    else:
        click.echo("catalog: empty (add entries under suanli.datasets.catalog in Dask config)")
    click.echo("generators: " + ", ".join(f"synthetic://{g}" for g in generator_names()))


@datasets_group.command("info")
@click.argument("dataset")
@click.option("--values", is_flag=True, help="Also count NaN/inf (reads all the data).")
def info_command(dataset: str, values: bool) -> None:
    """Dimensions, variables, chunks and size of DATASET (nothing is computed)."""
    from .opening import open as open_dataset
    from .values import value_report

    try:
        ds = open_dataset(dataset)
    except DatasetError as error:
        fail(error)
    click.echo(f"{dataset}: {format_bytes(int(ds.nbytes))}")
    click.echo("dims: " + ", ".join(f"{k}={v}" for k, v in ds.sizes.items()))
    for name, variable in ds.data_vars.items():
        chunks = getattr(variable.data, "chunksize", None)
        click.echo(f"  {name:<10} {variable.dtype!s:<8} {variable.dims}"
                   + (f" chunks {chunks}" if chunks else ""))
    if "sample_rate" in ds.get("time", ds).attrs or "sample_rate" in ds.attrs:
        from .panel import sample_rate

        click.echo(f"sample rate: {sample_rate(ds):g} Hz")
    if values and "signal" in ds:
        click.echo(f"values: {value_report(ds).summary()}")


def _generation_params(scenario: str, size: str | None, units: int | None,
                       duration: str | None) -> dict[str, Any]:
    from .generators import GENERATORS

    params: dict[str, Any] = {}
    if units is not None:
        params["units"] = units
    if duration is not None:
        params["duration"] = duration
    if size is not None:
        if duration is not None:
            raise DatasetError("give --size or --duration, not both")
        probe = GENERATORS[scenario](units=1, duration="1h")
        per_unit_hour = probe["signal"].nbytes
        count = units or DEFAULT_UNITS[scenario]
        hours = parse_bytes(size) / (per_unit_hour * count)
        params.update(units=count, duration=f"{max(hours * 3600, 1):.0f}s")
    return params


@datasets_group.command("generate")
@click.argument("scenario")
@click.argument("output", type=click.Path())
@click.option("--size", help="Total size of the signal, e.g. 20GiB (sets the duration).")
@click.option("--units", type=click.IntRange(min=1), help="Units (machines, sensors, patients).")
@click.option("--duration", help="Length per unit, e.g. 24h or 28D.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "kind", type=click.Choice(["zarr", "parquet"]), default=None,
              help="Output format (default: from the name; Zarr otherwise).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output (atomically).")
def generate_command(scenario: str, output: str, size: str | None, units: int | None,
                     duration: str | None, seed: int, kind: str | None,
                     overwrite: bool) -> None:
    """Generate SCENARIO (telemetry, traffic, vitals) into OUTPUT, in parallel.

    Chunks are generated and written as they are computed, never holding the
    dataset in memory; the output appears complete, with a manifest, or not at all.
    """
    from . import write
    from .generators import GENERATORS, open_synthetic

    if scenario not in GENERATORS:
        fail(DatasetError(f"unknown scenario {scenario!r}; known: "
                           f"{', '.join(sorted(GENERATORS))}"))
    try:
        params = _generation_params(scenario, size, units, duration)
        query = "&".join(f"{k}={v}" for k, v in {**params, "seed": seed}.items())
        ds = open_synthetic(f"synthetic://{scenario}?{query}")
    except ValueError as error:  # a size or duration that does not parse
        fail(DatasetError(str(error)))
    except DatasetError as error:
        fail(error)
    click.echo(f"generating {scenario}: {ds.sizes['unit']} units x {ds.sizes['time']} samples "
               f"x {ds.sizes['channel']} channels, {format_bytes(int(ds.signal.nbytes))}",
               err=True)
    try:
        path = write(ds, output, overwrite=overwrite, progress=True, format=kind)
    except DatasetError as error:
        fail(error)
    click.echo(f"wrote {path}")


@datasets_group.command("verify")
@click.argument("output", type=click.Path(exists=True))
@click.option("--fast", is_flag=True, help="Check presence and sizes only, not checksums.")
def verify_command(output: str, fast: bool) -> None:
    """Prove OUTPUT (written by suanli) is whole: every file present and unchanged."""
    from .manifest import verify

    try:
        found = verify(output, checksums=not fast)
    except DatasetError as error:
        fail(error)
    if found.ok:
        click.echo(f"{output}: all {found.files_checked} files as written")
        return
    click.echo(f"{output}: {len(found.problems)} problem(s)")
    for problem in found.problems:
        click.echo(f"  {problem}")
    raise SystemExit(EXIT_FAILED)
