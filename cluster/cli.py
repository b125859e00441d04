"""``suanli cluster ...``: plan, start, list and stop clusters; make TLS certificates.

Exit codes as for the rest of ``suanli``: 2 for a bad profile or argument,
1 when a cluster fails to start.
"""

from __future__ import annotations

import datetime

import click
import yaml

from suanli.command import fail, parse_assignments

from .errors import ClusterError, ClusterUsageError


@click.group("cluster")
def cluster_group() -> None:
    """Plan, start, list and stop clusters (profiles live in Dask's config)."""


@cluster_group.command("plan")
@click.argument("profile", required=False)
@click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
              help="Change a spec field, e.g. --set workers=4. Repeatable.")
def plan_command(profile: str | None, assignments: tuple[str, ...]) -> None:
    """Show what PROFILE (or kind) would launch, validated; nothing is started."""
    from . import launch_plan, plan

    try:
        spec = plan(profile, **parse_assignments(assignments, "FIELD=VALUE"))
        launch = launch_plan(spec)
    except ClusterError as error:
        fail(error)
    click.echo(f"# profile {profile or '(default)'}: kind {spec.kind}")
    click.echo(yaml.safe_dump({"spec": spec.to_dict()}, sort_keys=False).rstrip())
    click.echo(yaml.safe_dump({"launch": {"call": launch.call, "arguments": launch.arguments}},
                              sort_keys=False).rstrip())
    for note in launch.notes:
        click.echo(f"# {note}")
    for name, text in launch.artefacts.items():
        click.echo(f"\n# --- {name} ---\n{text.rstrip()}")


@cluster_group.command("up")
@click.argument("profile")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes to start beside the scheduler (default: the spec's, or 1).")
def up_command(profile: str, workers: int | None) -> None:
    """Start a cluster for PROFILE in the background: a shared TLS scheduler and workers,
    or (slurm, pbs) a scheduler here and workers as batch jobs."""
    from . import plan
    from .service import up

    try:
        spec = plan(profile)
        record = up(spec, spec.workers or 1 if workers is None else workers, profile=profile)
    except ClusterError as error:
        fail(error)
    count = spec.workers or 1 if workers is None else workers
    click.echo(f"started {record.id}: scheduler {record.scheduler_address}, {count} worker(s)"
               + (f" as batch jobs named {record.batch_job_name}" if record.batch_job_name
                  else ""))
    if record.dashboard_link:
        click.echo(f"dashboard: {record.dashboard_link}")
    if record.batch_job_name:
        click.echo(f"use it with a profile: {{kind: shared, address: "
                   f"{record.scheduler_address}, insecure: true}}")
    click.echo(f"stop it with: suanli cluster down {record.id}")


@cluster_group.command("list")
def list_command() -> None:
    """The clusters suanli started that are still running."""
    from .batch_service import jobs_of
    from .registry import records

    found = records()
    if not found:
        click.echo("no clusters started by suanli are running")
        return
    click.echo(f"{'id':<20} {'kind':<11} {'scheduler':<28} {'since':<20} dashboard")
    for record in found:
        since = datetime.datetime.fromtimestamp(record.started).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{record.id:<20} {record.kind:<11} {record.scheduler_address:<28} "
                   f"{since:<20} {record.dashboard_link or '-'}")
        if record.batch_job_name:
            jobs = jobs_of(record.batch_job_name)
            click.echo(f"  jobs ({record.batch_job_name}): "
                       + (", ".join(f"{job} {state.lower()}" for job, state in jobs) or "none"))


@cluster_group.command("down")
@click.argument("cluster_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Stop every cluster listed.")
def down_command(cluster_ids: tuple[str, ...], everything: bool) -> None:
    """Stop clusters suanli started (ids from `suanli cluster list`)."""
    from .registry import find, records
    from .service import down

    if not cluster_ids and not everything:
        fail(ClusterUsageError("name a cluster id (see `suanli cluster list`) or use --all"))
    targets = records() if everything else []
    for cluster_id in cluster_ids:
        record = find(cluster_id)
        if record is None:
            fail(ClusterUsageError(f"no running cluster {cluster_id!r}; see "
                                   "`suanli cluster list`"))
        targets.append(record)
    for record in targets:
        down(record)
        click.echo(f"stopped {record.id}")


@cluster_group.command("certs")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", "names", multiple=True,
              help="A party to make a certificate for (repeatable; default: cluster).")
@click.option("--host", "hosts", multiple=True,
              help="A host name or IP the certificates name (default: 127.0.0.1, localhost).")
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True)
def certs_command(directory: str, names: tuple[str, ...], hosts: tuple[str, ...],
                  days: int) -> None:
    """Make a CA and signed certificates for a TLS cluster in DIRECTORY."""
    from .certificates import make_certificates

    try:
        made = make_certificates(directory, names or ("cluster",),
                                 hosts or ("127.0.0.1", "localhost"), days)
    except ClusterError as error:
        fail(error)
    for name, files in made.items():
        click.echo(f"{name}:")
        click.echo(yaml.safe_dump({"tls": files.as_profile()}, sort_keys=False).rstrip())
