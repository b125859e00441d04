"""`suanli etl`: partitions planned from a source template, their state read from storage,
each committed whole with its manifest; reruns, staleness, failures, status."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from suanli import cluster, datasets, pipelines
from suanli.pipelines import PipelineDefinitionError
from suanli.pipelines.cli import main
from suanli.pipelines.etl import PartitionTemplate

DAYS = ("2024-03-01", "2024-03-02", "2024-03-03")


def _generate(raw: Path, day: str, seed: int) -> None:
    datasets.generate("telemetry", raw / f"{day}.zarr", units=10, minutes=1, seed=seed,
                      overwrite=True, progress=False)


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    for seed, day in enumerate(DAYS):
        _generate(folder, day, seed)
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_template_fields_keys_and_sources() -> None:
    daily = PartitionTemplate.parse("landing/{date:%Y/%m/%d}/*.nc")
    assert daily.source("2024-03-01") == "landing/2024/03/01/*.nc"
    assert daily.folder("2024-03-01") == "date=2024-03-01"
    assert daily.keys("2024-02-28", "2024-03-01") == ["2024-02-28", "2024-02-29", "2024-03-01"]
    hourly = PartitionTemplate.parse("sensors/{hour:%Y-%m-%dT%H}.csv.gz")
    assert hourly.keys("2024-03-01T22", "2024-03-02T01") == [
        "2024-03-01T22", "2024-03-01T23", "2024-03-02T00", "2024-03-02T01"]
    assert hourly.source("2024-03-02T00") == "sensors/2024-03-02T00.csv.gz"
    assert PartitionTemplate.parse("raw/{date}/*.parquet").source("2024-03-01") == \
        "raw/2024-03-01/*.parquet"
    for bad in ("raw/*.parquet", "raw/{day}/x", "raw/{date}/{hour}.csv"):
        with pytest.raises(PipelineDefinitionError, match="exactly one partition field"):
            PartitionTemplate.parse(bad)
    with pytest.raises(PipelineDefinitionError, match="not a date"):
        daily.start("March 1st")
    with pytest.raises(PipelineDefinitionError, match="before --since"):
        daily.keys("2024-03-02", "2024-03-01")
    assert isinstance(daily.start("2024-03-01"), datetime)


@pytest.mark.slow
def test_backfill_runs_each_partition_once_and_reruns_only_what_changed(
        raw: Path, tmp_path: Path, local_cluster: cluster.Cluster) -> None:
    source, root = f"{raw}/{{date}}.zarr", str(tmp_path / "features")
    fast = {"train.epochs": 5}
    plan = pipelines.etl("sensor-faults", source, root, since="2024-03-01",
                         until="2024-03-04", dry_run=True, overrides=fast)
    assert [(p["key"], p["outcome"]) for p in plan.partitions] == [
        ("2024-03-01", "would run"), ("2024-03-02", "would run"),
        ("2024-03-03", "would run"), ("2024-03-04", "skipped")]
    assert not Path(root).exists()  # a dry run writes nothing
    first = pipelines.etl("sensor-faults", source, root, since="2024-03-01",
                          until="2024-03-04", cluster=local_cluster, overrides=fast)
    assert first.ok and first.counts() == {"ran": 3, "skipped": 1}
    # Each partition: its own data's features, committed with its manifest.
    one = Path(root) / "date=2024-03-02"
    manifest = json.loads((one / "etl.json").read_text())
    assert manifest["partition"] == "2024-03-02" and manifest["pipeline"] == "sensor-faults"
    assert {Path(f["path"]).parts[-2] for f in manifest["inputs"]} >= {"2024-03-02.zarr"}
    import zlib

    import google_crc32c

    assert all(entry["crc32c"] == google_crc32c.Checksum(Path(entry["path"]).read_bytes())
               .hexdigest().decode() and entry["size"]
               for entry in manifest["inputs"])  # each input file's size and checksum
    assert google_crc32c.value(b"123456789") == 0xE3069283  # CRC32C's check value
    assert zlib.crc32(b"123456789") != 0xE3069283  # (not zlib's CRC32)
    assert "features.zarr/zarr.json" in manifest["outputs"]
    assert manifest["training"].startswith("not run per partition")
    assert CliRunner().invoke(main, ["datasets", "verify", str(one)]).exit_code == 0
    direct = pipelines.load_pipeline("sensor-faults").transform(
        datasets.open(str(raw / "2024-03-02.zarr")))
    written = xr.open_zarr(one / "features.zarr").load()
    np.testing.assert_array_equal(written["band_power"].values, direct["band_power"].values)
    # Rerun: nothing to do, and it says so; no partition is rewritten (the run only
    # took and released the root's lease, under _etl/).
    before = _files(Path(root))
    again = pipelines.etl("sensor-faults", source, root, since="2024-03-01",
                          until="2024-03-04", cluster=local_cluster, overrides=fast)
    assert again.counts() == {"done": 3, "skipped": 1}
    assert "already done" in again.summary()
    assert {k: v for k, v in _files(Path(root)).items() if not k.startswith("_etl/")} == \
        {k: v for k, v in before.items() if not k.startswith("_etl/")}
    # New inputs for one day make it stale: reported, rerun only with --force.
    _generate(raw, "2024-03-02", seed=7)
    stale = pipelines.etl("sensor-faults", source, root, partition="2024-03-02",
                          cluster=local_cluster, overrides=fast)
    assert stale.partitions[0]["outcome"] == "stale"
    assert "inputs changed" in stale.partitions[0]["reason"]
    forced = pipelines.etl("sensor-faults", source, root, partition="2024-03-02",
                           cluster=local_cluster, force=True, overrides=fast)
    assert forced.counts() == {"ran": 1}
    assert not np.array_equal(xr.open_zarr(one / "features.zarr")["band_power"].values,
                              written["band_power"].values)
    # A forced rerun of an unchanged partition writes the same store, byte for byte,
    # its manifest included.
    day_one = Path(root) / "date=2024-03-01" / "features.zarr"
    kept = _files(day_one)
    pipelines.etl("sensor-faults", source, root, partition="2024-03-01",
                  cluster=local_cluster, force=True, overrides=fast)
    assert _files(day_one) == kept
    # A changed pipeline makes every partition stale.
    changed = pipelines.etl("sensor-faults", source, root, partition="2024-03-03",
                            cluster=local_cluster,
                            overrides={**fast, "fill_gaps.max_gap": 64})
    assert changed.partitions[0]["outcome"] == "stale"


@pytest.mark.slow
def test_a_failed_partition_is_recorded_and_does_not_stop_the_others(
        raw: Path, tmp_path: Path, local_cluster: cluster.Cluster) -> None:
    source, root = f"{raw}/{{date}}.zarr", str(tmp_path / "features")
    broken = datasets.open("synthetic://telemetry?units=10&minutes=1&seed=1").rename(
        {"signal": "readings"})
    datasets.write(broken, raw / "2024-03-02.zarr", overwrite=True, progress=False)
    profile = {"suanli.cluster.profiles.test": local_cluster.spec.to_dict()}
    import dask.config

    with dask.config.set(profile):
        ran = CliRunner().invoke(main, ["etl", "sensor-faults", "--source", source, "--output",
                                        root, "--since", "2024-03-01", "--until", "2024-03-03",
                                        "--cluster", "test", "--set", "train.epochs=5",
                                        "--parallel", "3", "--log-format", "json"])
    assert ran.exit_code == 1, ran.output
    # Every line is JSON (messages on standard error, the result on standard output).
    events = [json.loads(line) for line in ran.output.splitlines() if line.strip()]
    result = next(e for e in events if e["event"] == "result")
    assert result["ok"] is False and result["counts"] == {"ran": 2, "failed": 1}
    failed_line = next(p for p in result["partitions"] if p["outcome"] == "failed")
    assert failed_line["key"] == "2024-03-02" and "signal" in failed_line["reason"]
    assert any(e["event"] == "message" and "2024-03-02: failed" in e["message"]
               for e in events)
    assert result["report"] and Path(result["report"]).is_file()  # the performance report
    assert (Path(root) / "date=2024-03-01" / "etl.json").exists()
    assert (Path(root) / "date=2024-03-03" / "etl.json").exists()
    assert not (Path(root) / "date=2024-03-02").exists()  # nothing partial reads as done
    status = CliRunner().invoke(main, ["etl", "status", root, "--json"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert report["counts"] == {"done": 2, "failed": 1}
    failed = next(p for p in report["partitions"] if p["state"] == "failed")
    assert failed["key"] == "2024-03-02" and "signal" in failed["error"]
    # Fixed input: the failed partition runs, and its failure record goes.
    _generate(raw, "2024-03-02", seed=1)
    retried = pipelines.etl("sensor-faults", source, root, since="2024-03-01",
                            until="2024-03-03", cluster=local_cluster,
                            overrides={"train.epochs": 5})
    assert retried.counts() == {"done": 2, "ran": 1}
    assert json.loads(CliRunner().invoke(main, ["etl", "status", root, "--json"]).output)[
        "counts"] == {"done": 3}


def test_bad_requests_are_refused_before_anything_runs(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(main, ["etl", "sensor-faults", "--source", "raw/{date}.zarr",
                                "--output", str(tmp_path / "o"), "--partition", "2024-03-01",
                                "--since", "2024-03-01", "--until", "2024-03-02"])
    assert both.exit_code == 2 and "not both" in both.output
    field = runner.invoke(main, ["etl", "sensor-faults", "--source", "raw/x.zarr",
                                 "--output", str(tmp_path / "o"), "--partition", "2024-03-01"])
    assert field.exit_code == 2 and "{date} or {hour}" in field.output
    assert not (tmp_path / "o").exists()
    empty = runner.invoke(main, ["etl", "status", str(tmp_path / "nothing")])
    assert empty.exit_code == 0 and "no partitions" in empty.output


def _environment(tmp_path: Path) -> dict[str, str]:
    """A `suanli` process's environment: a one-worker local cluster on a free port."""
    import os

    prefix = "DASK_SUANLI__CLUSTER__"
    return {**os.environ, f"{prefix}STATE_DIRECTORY": str(tmp_path / "cluster-state"),
            f"{prefix}PROFILES__LOCAL__DASHBOARD_ADDRESS": "127.0.0.1:0",
            f"{prefix}PROFILES__LOCAL__WORKERS": "1",
            f"{prefix}PROFILES__LOCAL__THREADS_PER_WORKER": "1",
            f"{prefix}PROFILES__LOCAL__MEMORY_LIMIT": "2GiB"}


@pytest.mark.slow
def test_two_real_etl_processes_race_and_exactly_one_runs(raw: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    suanli = str(Path(sys.executable).parent / "suanli")
    root = str(tmp_path / "features")
    command = [suanli, "etl", "sensor-faults", "--source", f"{raw}/{{date}}.zarr",
               "--output", root, "--since", "2024-03-01", "--until", "2024-03-03",
               "--cluster", "local", "--set", "train.epochs=5"]
    racers = [subprocess.Popen(command, env=_environment(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((r.wait(timeout=300), r.communicate()) for r in racers)
    (won, (won_out, _)), (lost, (_, lost_err)) = outcomes
    assert (won, lost) == (0, 3), outcomes
    assert "3 ran" in won_out
    assert "another ETL run holds the lease" in lost_err and "pid" in lost_err
    status = json.loads(CliRunner().invoke(main, ["etl", "status", root, "--json"]).output)
    assert status["counts"] == {"done": 3}
    assert status["lease"]["token"] == 1 and status["lease"]["state"] == "released"


def test_a_sigkilled_holders_lease_is_taken_over(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from suanli.pipelines import LeaseHeld
    from suanli.pipelines.etl.lease import acquire

    root = str(tmp_path / "root")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from suanli.pipelines.etl.lease import acquire\n"
         f"acquire({root!r}, pipeline='p', takeover_after=2.0)\n"
         "print('held', flush=True)\ntime.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld, match=f"pid {holder.pid}"):
            acquire(root, pipeline="q", takeover_after=2.0)
        time.sleep(2.5)  # heartbeats (every 0.5 s) keep it held past the takeover time
        with pytest.raises(LeaseHeld):
            acquire(root, pipeline="q", takeover_after=2.0)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    began = time.monotonic()
    lease = acquire(root, pipeline="q", takeover_after=2.0, wait=10)
    assert time.monotonic() - began < 5
    assert lease.token == 2 and lease.record["took_over"] == 1
    lease.release()


@pytest.mark.slow
def test_parquet_partitions_are_tables_any_engine_reads(
        raw: Path, tmp_path: Path, local_cluster: cluster.Cluster) -> None:
    """--format parquet: each partition a table with a row per unit and window, read by
    plain pyarrow/pandas (the manifest is skipped as _SUCCESS is) and back by suanli as
    the very features Zarr holds; a format change makes a partition stale, and a forced
    rerun writes the same bytes."""
    import pandas as pd
    import pyarrow.dataset as pads

    source, root = f"{raw}/{{date}}.zarr", str(tmp_path / "tables")
    fast = {"train.epochs": 5}
    args = ["etl", "sensor-faults", "--source", source, "--output", root, "--since",
            "2024-03-01", "--until", "2024-03-02", "--set", "train.epochs=5"]
    # The CLI makes a local cluster from config; the Python call shares the test's.
    ran = pipelines.etl("sensor-faults", source, root, since="2024-03-01",
                        until="2024-03-02", format="parquet", cluster=local_cluster,
                        overrides=fast)
    assert ran.counts() == {"ran": 2}
    one = Path(root) / "date=2024-03-02"
    assert json.loads((one / "etl.json").read_text())["format"] == "parquet"
    table = pd.read_parquet(one / "features.parquet")  # no suanli involved
    direct = pipelines.load_pipeline("sensor-faults").transform(
        datasets.open(str(raw / "2024-03-02.zarr"))).compute()
    assert len(table) == direct.sizes["unit"] * direct.sizes["window"]
    assert list(table.columns[:4]) == ["unit", "window", "window_start", "window_end"]
    unit3 = table[table["unit"] == 3].sort_values("window")
    np.testing.assert_array_equal(
        unit3["band_power[current,10-20Hz]"].to_numpy(),
        direct["band_power"].sel(unit=3, channel="current", band="10-20Hz").values)
    assert (unit3["label"] == int(direct["label"].sel(unit=3))).all()
    # The whole root as one hive-partitioned dataset: date is a column.
    hive = pads.dataset(root, format="parquet", partitioning="hive",
                        exclude_invalid_files=True).to_table().to_pandas()
    assert len(hive) == 2 * len(table) and set(hive["date"].astype(str)) == {
        "2024-03-01", "2024-03-02"}
    # suanli reads the table back as the features Dataset, values and coordinates.
    back = datasets.open(str(one / "features.parquet"))
    xr.testing.assert_identical(back[["band_power", "window_stats"]],
                                direct[["band_power", "window_stats"]])
    assert CliRunner().invoke(main, ["datasets", "verify", str(one)]).exit_code == 0
    # Asking for Zarr now: stale, because of the format; the CLI says so and runs nothing.
    zarr_plan = CliRunner().invoke(main, [*args, "--format", "zarr", "--dry-run"])
    assert zarr_plan.exit_code == 0, zarr_plan.output
    assert "written as parquet, asked for zarr" in zarr_plan.output
    # A forced rerun writes the same table, byte for byte.
    kept = _files(one / "features.parquet")
    assert pipelines.etl("sensor-faults", source, root, partition="2024-03-02",
                         format="parquet", force=True, cluster=local_cluster,
                         overrides=fast).counts() == {"ran": 1}
    assert _files(one / "features.parquet") == kept
    done = CliRunner().invoke(main, [*args, "--format", "parquet"])
    assert done.exit_code == 0 and "2 done" in done.output  # nothing to run


@pytest.mark.slow
def test_a_run_that_lost_its_lease_cannot_commit(
        raw: Path, tmp_path: Path, local_cluster: cluster.Cluster) -> None:
    import time

    from suanli.pipelines import LeaseLost
    from suanli.pipelines.etl.backfill import _run_partition, plan_etl
    from suanli.pipelines.etl.lease import acquire

    root = str(tmp_path / "features")
    paused = acquire(root, pipeline="sensor-faults", takeover_after=1.0)
    paused._stop.set()  # its process stalls: no more heartbeats
    time.sleep(1.3)
    successor = acquire(root, pipeline="sensor-faults", takeover_after=1.0)
    assert successor.token == paused.token + 1
    pipe, template, states = plan_etl("sensor-faults", f"{raw}/{{date}}.zarr", root,
                                      partition="2024-03-01",
                                      overrides={"train.epochs": 5})
    with pytest.raises(LeaseLost, match="lost its lease"):
        _run_partition(pipe, template, states[0], root, "zarr", local_cluster, paused,
                       lambda message: None)
    assert not (Path(root) / "date=2024-03-01").exists()
    paused.release()  # writes nothing over the successor's lease
    assert json.loads(CliRunner().invoke(main, ["etl", "status", root, "--json"]).output)[
        "lease"]["token"] == successor.token
    successor.check()
    successor.release()


@pytest.mark.slow
def test_an_object_storage_root_holds_partitions_state_and_lease(
        raw: Path, s3: dict, local_cluster: cluster.Cluster,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's S3 server as the output root: partitions committed there, their state and
    the lease read from there; the lease's exclusive create is S3's conditional write."""
    import uuid

    import fsspec

    from suanli.pipelines.etl.lease import _create_exclusive

    monkeypatch.setitem(fsspec.config.conf, "s3", s3["options"])
    root = f"s3://suanli-test/etl-{uuid.uuid4().hex[:8]}"
    fs = s3["fs"]
    marker = f"{root.removeprefix('s3://')}/_probe.json"  # a path on fs, as url_to_fs gives
    assert _create_exclusive(fs, marker, b"{}") is True
    assert _create_exclusive(fs, marker, b"{}") is False  # If-None-Match: *
    source = f"{raw}/{{date}}.zarr"
    first = pipelines.etl("sensor-faults", source, root, since="2024-03-01",
                          until="2024-03-02", cluster=local_cluster,
                          overrides={"train.epochs": 5})
    assert first.counts() == {"ran": 2}
    assert fs.exists(f"{root.removeprefix('s3://')}/date=2024-03-01/features.zarr/zarr.json")
    written = xr.open_zarr(f"{root}/date=2024-03-02/features.zarr",
                           storage_options=s3["options"])
    direct = pipelines.load_pipeline("sensor-faults").transform(
        datasets.open(str(raw / "2024-03-02.zarr")))
    np.testing.assert_array_equal(written["band_power"].values, direct["band_power"].values)
    again = pipelines.etl("sensor-faults", source, root, since="2024-03-01",
                          until="2024-03-02", cluster=local_cluster,
                          overrides={"train.epochs": 5})
    assert again.counts() == {"done": 2}
    status = pipelines.etl_status(root)
    assert status["counts"] == {"done": 2}
    assert status["lease"]["token"] == 2 and status["lease"]["state"] == "released"
    # The workers wrote the features straight to S3; the manifest's checksums are theirs.
    bucket_path = f"{root.removeprefix('s3://')}/date=2024-03-01"
    manifest = json.loads(fs.cat_file(f"{bucket_path}/etl.json"))
    assert manifest["outputs"]["features.zarr/zarr.json"] == datasets.file_digest(
        f"{bucket_path}/features.zarr/zarr.json", fs)
    assert datasets.verify(f"{root}/date=2024-03-01", storage_options=s3["options"]).ok
    # A Parquet table on S3, read by pandas straight from the bucket.
    import pandas as pd

    assert pipelines.etl("sensor-faults", source, root, partition="2024-03-01",
                         format="parquet", force=True, cluster=local_cluster,
                         overrides={"train.epochs": 5}).counts() == {"ran": 1}
    table = pd.read_parquet(f"{root}/date=2024-03-01/features.parquet",
                            storage_options=s3["options"])
    assert len(table) == direct.sizes["unit"] * direct.sizes["window"]
    assert not fs.exists(f"{bucket_path}/features.zarr")  # replaced whole
    fs.invalidate_cache()
    assert [p for p in fs.find(root.removeprefix("s3://"), withdirs=True)
            if p.rpartition("/")[2].startswith(".")] == []  # no staging left


@pytest.mark.slow
def test_a_worker_killed_mid_partition_leaves_the_partitions_identical(
        tmp_path: Path, local_cluster: cluster.Cluster) -> None:
    """A worker SIGKILLed during a backfill: its nanny starts it again, the lost tasks
    rerun, and every partition equals a clean backfill's."""
    import os
    import signal
    import threading

    raw = tmp_path / "raw"
    days = ["2024-03-01", "2024-03-02", "2024-03-03"]
    for seed, day in enumerate(days):
        datasets.generate("telemetry", raw / f"{day}.zarr", units=12, minutes=4, seed=seed,
                          progress=False)
    source = f"{raw}/{{date}}.zarr"
    clean_root, chaos_root = str(tmp_path / "clean"), str(tmp_path / "chaos")
    options = {"since": days[0], "until": days[-1], "overrides": {"train.epochs": 5}}
    assert pipelines.etl("sensor-faults", source, clean_root, cluster=local_cluster,
                         **options).counts() == {"ran": 3}
    with cluster.start("local", workers=2, threads_per_worker=1,
                       dashboard_address=None) as c:
        victim = next(iter(c.client.run(os.getpid).values()))
        threading.Timer(1.5, os.kill, (victim, signal.SIGKILL)).start()
        result = pipelines.etl("sensor-faults", source, chaos_root, cluster=c, parallel=1,
                               **options)
        assert victim not in c.client.run(os.getpid).values(), "the worker was not killed"
    assert result.counts() == {"ran": 3}, result.summary()
    for day in days:
        folder = f"date={day}/features.zarr"
        xr.testing.assert_identical(xr.open_zarr(Path(chaos_root, folder)).load(),
                                    xr.open_zarr(Path(clean_root, folder)).load())


@pytest.mark.slow
def test_a_lost_scheduler_stops_the_backfill_and_the_rerun_completes(
        raw: Path, tmp_path: Path, local_cluster: cluster.Cluster,
        plain_scheduler: Any) -> None:
    """RELIABILITY R7 for ETL: the scheduler killed mid-backfill; the run stops within
    seconds saying to rerun, no partition is left half-written or marked failed, and
    the rerun on a working cluster does the rest."""
    import threading
    import time

    for seed, day in enumerate(["2024-03-04", "2024-03-05", "2024-03-06"]):
        _generate(raw, day, seed + 3)
    source, root = f"{raw}/{{date}}.zarr", str(tmp_path / "features")
    options = {"since": "2024-03-01", "until": "2024-03-06",
               "overrides": {"train.epochs": 5}}
    team = plain_scheduler(1)
    spec = cluster.ClusterSpec(kind="shared", address=team.address, insecure=True, workers=1)
    with cluster.start(spec) as c:
        threading.Timer(3.0, team.scheduler.kill).start()
        began = time.monotonic()
        with pytest.raises(pipelines.PipelineError, match=r"lost the scheduler .* rerun"):
            pipelines.etl("sensor-faults", source, root, cluster=c, parallel=1, **options)
        assert time.monotonic() - began < 30
    assert team.workers.wait(timeout=30) is not None  # the workers give up on their own
    status = pipelines.etl_status(root)
    done = status["counts"].get("done", 0)
    assert set(status["counts"]) <= {"done"} and done < 6  # none failed, none partial
    assert len(list(Path(root).glob("date=*"))) == done
    assert status["lease"]["state"] == "released"
    rerun = pipelines.etl("sensor-faults", source, root, cluster=local_cluster, **options)
    assert rerun.counts() == ({"done": done, "ran": 6 - done} if done else {"ran": 6})
    assert pipelines.etl_status(root)["counts"] == {"done": 6}


@pytest.mark.slow
def test_a_cluster_left_without_workers_stops_the_backfill(
        raw: Path, tmp_path: Path, local_cluster: cluster.Cluster) -> None:
    """Every worker exits (cleanly: their nannies do not replace them) mid-backfill. The
    scheduler's no-workers timeout fails the waiting tasks, and the run stops saying
    so, rather than waiting as long again for each remaining partition and marking
    them all failed; the rerun on a working cluster does the rest."""
    import time

    from distributed.chaos import KillWorker

    for seed, day in enumerate(["2024-03-04", "2024-03-05", "2024-03-06"]):
        _generate(raw, day, seed + 3)
    source, root = f"{raw}/{{date}}.zarr", str(tmp_path / "features")
    options = {"since": "2024-03-01", "until": "2024-03-06",
               "overrides": {"train.epochs": 5}}
    with cluster.start("local", workers=2, threads_per_worker=1, dashboard_address=None,
                       config={"distributed.scheduler.no-workers-timeout": "3s"}) as c:
        c.client.register_plugin(KillWorker(delay="1s", mode="sys.exit"), name="chaos")
        began = time.monotonic()
        with pytest.raises(pipelines.PipelineError,
                           match=r"had no workers .* committed before stay done"):
            pipelines.etl("sensor-faults", source, root, cluster=c, parallel=1, **options)
        assert time.monotonic() - began < 60
    status = pipelines.etl_status(root)
    assert set(status["counts"]) <= {"done"}, status["counts"]  # none marked failed
    done = status["counts"].get("done", 0)
    rerun = pipelines.etl("sensor-faults", source, root, cluster=local_cluster, **options)
    assert rerun.counts() == ({"done": done, "ran": 6 - done} if done else {"ran": 6})


@pytest.mark.slow
def test_a_runner_killed_during_writes_never_leaves_a_partial_partition(
        raw: Path, tmp_path: Path, local_cluster: cluster.Cluster) -> None:
    """RELIABILITY R8 for ETL: `suanli etl --force` SIGKILLed at several moments of its
    partitions' writes. Every partition stays whole (verified) and equal to the clean
    run; the next run takes over the dead runner's lease, removes its staging folders,
    completes, and writes the clean run's bytes."""
    import signal
    import subprocess
    import sys
    import time

    source, root = f"{raw}/{{date}}.zarr", tmp_path / "features"
    options = {"since": "2024-03-01", "until": "2024-03-03", "overrides": {"train.epochs": 5}}
    assert pipelines.etl("sensor-faults", source, str(root), cluster=local_cluster,
                         **options).counts() == {"ran": 3}
    clean = {day: _files(root / f"date={day}" / "features.zarr") for day in DAYS}
    command = [str(Path(sys.executable).parent / "suanli"), "etl", "sensor-faults",
               "--source", source, "--output", str(root), "--since", DAYS[0], "--until",
               DAYS[-1], "--force", "--parallel", "1", "--cluster", "local",
               "--takeover-after", "2s", "--wait", "30s", "--set", "train.epochs=5"]
    staged = []
    # Killed as soon as a partition's write begins (its staging folder appears), then
    # at fixed moments, which fall anywhere: before, during or at a commit.
    for delay in ("at a write", 4.0, 5.5):
        runner = subprocess.Popen(command, env=_environment(tmp_path),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if isinstance(delay, float):
            time.sleep(delay)
        else:
            deadline = time.monotonic() + 60
            while not list(root.glob(".*.writing-*")) and time.monotonic() < deadline:
                time.sleep(0.01)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
        staged += list(root.glob(".*.writing-*"))  # a write the kill cut short
        for day in DAYS:
            folder = root / f"date={day}"
            assert datasets.verify(folder).ok, (delay, day)
            now = _files(folder / "features.zarr")
            assert now == clean[day], (delay, day)
        _wait_for_orphans(tmp_path)
    assert staged, "no kill fell during a write: the test tested nothing"
    done = subprocess.run(command, env=_environment(tmp_path), capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(root.glob(".*.writing-*")), "a killed runner's staging was left"
    for day in DAYS:
        now = _files(root / f"date={day}" / "features.zarr")
        assert now == clean[day]
    assert pipelines.etl_status(str(root))["counts"] == {"done": 3}


def _wait_for_orphans(tmp_path: Path) -> None:
    """The killed runner's cluster (its nannies and workers) notices and exits."""
    import time

    import psutil

    def orphans() -> list[int]:
        found = []
        for process in psutil.process_iter(["pid", "cmdline", "ppid"]):
            command = " ".join(process.info["cmdline"] or ())
            if process.info["ppid"] == 1 and "spawn_main" in command:
                found.append(process.info["pid"])
        return found

    deadline = time.monotonic() + 60
    while orphans() and time.monotonic() < deadline:
        time.sleep(0.5)


def test_etls_own_reads_retry_a_transient_storage_error(
        raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """R6 for ETL's bookkeeping: listing a partition's inputs and reading a manifest
    or the lease are retried after a transient OSError, as every data read is."""
    from suanli.pipelines.etl import lease, state

    failures = {"listed": 1, "latest": 1}

    def flaky(name: str, real: object) -> object:
        def call(*args: object) -> object:
            if failures[name]:
                failures[name] -= 1
                raise ConnectionResetError(104, "Connection reset by peer")
            return real(*args)  # type: ignore[operator]
        return call

    monkeypatch.setattr(state, "_listed", flaky("listed", state._listed))
    monkeypatch.setattr(lease, "_latest", flaky("latest", lease._latest))
    assert len(state.list_inputs(str(raw / "2024-03-01.zarr"))) > 3
    assert lease.current_lease(str(raw)) is None
    assert failures == {"listed": 0, "latest": 0}
