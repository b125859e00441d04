"""Scaling analysis: the figures' arithmetic by hand on recorded timings, the time
breakdown on a hand-made task stream, resizing specs, and a real 1-and-2-worker sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path

import dask.config
import pytest
from click.testing import CliRunner

from suanli import cluster, pipelines
from suanli.cluster import ClusterSpecError, ClusterUsageError
from suanli.pipelines import PipelineDefinitionError
from suanli.pipelines.cli import main
from suanli.pipelines.scaling_laws import (
    efficiencies,
    fit_amdahl,
    fit_gustafson,
    karp_flatt,
    last_worthwhile_workers,
    scaled_speedups,
    speedups,
    verdict,
    weak_efficiencies,
)
from suanli.pipelines.scaling_sweep import _validated, features_digest, numeric_metrics
from suanli.pipelines.time_breakdown import breakdown, totals

# T(K) = 10 + 90 / K: Amdahl with a serial tenth, recorded as a sweep would record it.
AMDAHL_TIMES = {1: 100.0, 2: 55.0, 4: 32.5, 8: 21.25}
DATA = "synthetic://telemetry?units=12&minutes=1&seed=2"
FAST = {"train.epochs": 30}


def test_speedup_efficiency_and_karp_flatt_by_hand() -> None:
    s = speedups(AMDAHL_TIMES)
    assert s == pytest.approx({1: 1.0, 2: 100 / 55, 4: 100 / 32.5, 8: 100 / 21.25})
    assert efficiencies(AMDAHL_TIMES) == pytest.approx(
        {1: 1.0, 2: 100 / 110, 4: 100 / 130, 8: 100 / 170})
    # On exact Amdahl data the Karp–Flatt metric is the serial fraction at every K.
    assert karp_flatt(s[1], 1) is None
    for k in (2, 4, 8):
        assert karp_flatt(s[k], k) == pytest.approx(0.1)
    # By the formula: S = 1.5 on 2 workers -> (1/1.5 - 1/2) / (1 - 1/2) = 1/3.
    assert karp_flatt(1.5, 2) == pytest.approx(1 / 3)


def test_speedup_from_a_smallest_count_above_one() -> None:
    # From 2 workers, the speedup reads as from one (assuming 2 scaled perfectly).
    assert speedups({2: 50.0, 4: 30.0}) == pytest.approx({2: 2.0, 4: 100 / 30})


def test_amdahl_fit_recovers_the_serial_fraction_and_where_it_stops_paying() -> None:
    fit = fit_amdahl(AMDAHL_TIMES)
    assert fit is not None
    assert fit.serial_seconds == pytest.approx(10) and fit.parallel_seconds == pytest.approx(90)
    assert fit.serial_fraction == pytest.approx(0.1)
    # E(K) = 1 / (0.1 K + 0.9) >= 0.5  <=>  K <= 11; E(11) is exactly 0.5.
    assert last_worthwhile_workers(0.1, 0.5) == 11
    assert fit.efficiency(11) == pytest.approx(0.5)
    assert fit.efficiency(12) < 0.5
    assert last_worthwhile_workers(0.0) == math.inf
    sentence = verdict(fit, 0.5, AMDAHL_TIMES)
    assert "10.0%" in sentence and "beyond 11 workers" in sentence and "up to 8" in sentence
    assert fit_amdahl({1: 5.0}) is None
    assert "two or more" in verdict(None)


def test_amdahl_fit_keeps_its_parts_non_negative() -> None:
    # Superlinear (T1 = 100, T2 = 40) would need a negative serial part: it is 0, and
    # b is the least-squares fit of T = b / K: (100 + 40/2) / (1 + 1/4) = 96.
    fit = fit_amdahl({1: 100.0, 2: 40.0})
    assert fit is not None and fit.serial_seconds == 0 and fit.parallel_seconds == pytest.approx(96)
    # No speedup at all: all serial, a = the mean time.
    flat = fit_amdahl({1: 10.0, 2: 10.0, 4: 10.0})
    assert flat is not None and flat.serial_fraction == pytest.approx(1.0)


def test_weak_scaling_figures_and_gustafson_fit_by_hand() -> None:
    times = {1: 10.0, 2: 10.5, 4: 11.0}
    assert weak_efficiencies(times) == pytest.approx({1: 1.0, 2: 10 / 10.5, 4: 10 / 11})
    scaled = scaled_speedups(times)
    assert scaled == pytest.approx({1: 1.0, 2: 20 / 10.5, 4: 40 / 11})
    # s = sum((K-1)(K-S)) / sum((K-1)^2) over K = 2, 4.
    by_hand = ((2 - scaled[2]) * 1 + (4 - scaled[4]) * 3) / (1 + 9)
    assert fit_gustafson(times) == pytest.approx(by_hand)
    assert fit_gustafson({1: 10.0}) is None


def test_time_breakdown_by_stage_and_category() -> None:
    spans = {"features": (100.0, 110.0), "training": (110.0, 114.0)}

    def task(key: str, *parts: tuple[str, float, float]) -> dict[str, object]:
        return {"key": key, "startstops": [{"action": a, "start": s, "stop": e}
                                           for a, s, e in parts]}

    tasks = [
        task("features-abc", ("transfer", 100.5, 101.0), ("compute", 101.0, 104.0)),
        task("('store-map-123', 0, 0)", ("compute", 104.0, 105.5)),
        task("fit-1", ("deserialize", 110.0, 110.25), ("compute", 110.25, 112.0),
             ("disk-write", 112.0, 112.5)),
        task("late-1", ("compute", 115.0, 115.5)),  # after every stage: "other"
    ]
    stages = breakdown(tasks, spans, (99.0, 116.0), threads=2)
    assert stages["features"] == pytest.approx({
        "wall": 10, "tasks": 2, "compute": 3.0, "writing": 1.5, "transfer": 0.5,
        "serialisation": 0, "spill": 0, "idle": 2 * 10 - 5.0})
    assert stages["training"] == pytest.approx({
        "wall": 4, "tasks": 1, "compute": 1.75, "writing": 0, "transfer": 0,
        "serialisation": 0.25, "spill": 0.5, "idle": 8 - 2.5})
    # The run's 17 s less the stages' 14 s.
    assert stages["other"]["wall"] == pytest.approx(3) and stages["other"]["tasks"] == 1
    total = totals(stages)
    assert total["wall"] == pytest.approx(17) and total["tasks"] == 4
    assert total["compute"] == pytest.approx(3 + 1.75 + 0.5)


def test_with_workers_resizes_every_kind_it_can() -> None:
    local = cluster.with_workers(cluster.ClusterSpec(kind="local", threads_per_worker=1), 3)
    assert local.workers == 3 and local.threads_per_worker == 1
    ssh = cluster.with_workers(cluster.ClusterSpec(
        kind="ssh", address="127.0.0.1",
        hosts=("127.0.0.2", {"address": "127.0.0.3", "workers": 4}, "127.0.0.4")), 5)
    assert [(h["address"], h["workers"]) for h in ssh.host_entries()] == [
        ("127.0.0.2", 2), ("127.0.0.3", 2), ("127.0.0.4", 1)]
    one = cluster.with_workers(cluster.ClusterSpec(
        kind="ssh", hosts=("127.0.0.2", "127.0.0.3")), 1)
    assert [h["address"] for h in one.host_entries()] == ["127.0.0.2"]
    assert one.address == "127.0.0.2"  # the scheduler stays on the first host
    assert cluster.with_workers(cluster.ClusterSpec(kind="local-cuda"), 2).gpus == 2
    slurm = cluster.with_workers(cluster.ClusterSpec(kind="slurm", workers=16), 4)
    assert slurm.workers == 4
    with pytest.raises(ClusterUsageError, match="shared cluster's workers"):
        cluster.with_workers(cluster.ClusterSpec(
            kind="shared", address="tls://127.0.0.1:8786", insecure=False,
            tls={"ca_file": "a", "cert": "b", "key": "c"}), 2)
    with pytest.raises(ClusterSpecError, match="workers"):
        cluster.with_workers(cluster.ClusterSpec(), 0)


def test_a_point_that_computes_something_else_is_flagged() -> None:
    first = {"features_digest": {"band_power": "a", "split": "s"},
             "metrics": {"accuracy": 0.9}}
    same = {"features_digest": {"band_power": "a", "split": "s"},
            "metrics": {"accuracy": 0.9 + 1e-9}}
    assert _validated(same, first, "strong") == {"valid": True, "differs": []}
    other = {"features_digest": {"band_power": "b", "split": "t"},
             "metrics": {"accuracy": 0.8}}
    assert _validated(other, first, "strong")["differs"] == [
        "feature band_power", "feature split", "metric accuracy"]
    # Weak: the split is drawn over each point's own units, and metrics differ by design.
    assert _validated(other, first, "weak")["differs"] == ["feature band_power"]
    assert numeric_metrics({"a": 1, "b": {"c": 2.5, "d": "x"}, "e": [1, 2], "f": True}) == {
        "a": 1.0, "b.c": 2.5, "e.0": 1.0, "e.1": 2.0}


def test_features_digest_does_not_depend_on_chunks(small_panel: object) -> None:
    import xarray as xr

    assert isinstance(small_panel, xr.Dataset)
    ds = small_panel.compute()
    # In this process: no cluster is needed to read chunks of arrays held here.
    with dask.config.set(scheduler="synchronous"):
        one = features_digest(ds.chunk({"unit": 1}), slab=3)
        assert one == features_digest(ds.chunk({"unit": 5}))
        assert features_digest(ds, units=4) == features_digest(ds.isel(unit=slice(0, 4)))
        assert features_digest(ds, units=4) != one


def test_bad_sweeps_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(PipelineDefinitionError, match="twice"):
        pipelines.plan_scaling("sensor-faults", DATA, "test", [1, 2, 2])
    with pytest.raises(PipelineDefinitionError, match="whole numbers"):
        pipelines.plan_scaling("sensor-faults", DATA, "test", [0, 2])
    with pytest.raises(PipelineDefinitionError, match="at least 8 units"):
        pipelines.plan_scaling("sensor-faults", "synthetic://telemetry?units=1&minutes=1",
                               "test", [1, 8], mode="weak")
    ran = CliRunner().invoke(main, ["bench", "scaling", "sensor-faults", "--workers", "1,x"])
    assert ran.exit_code == 2 and "whole numbers" in ran.output
    ran = CliRunner().invoke(main, ["bench", "scaling", "no-such-pipeline",
                                    "--output", str(tmp_path / "out")])
    assert ran.exit_code == 2 and "unknown pipeline" in ran.output
    assert not (tmp_path / "out").exists()


def test_dry_run_shows_each_point_and_starts_nothing() -> None:
    ran = CliRunner().invoke(main, ["bench", "scaling", "sensor-faults", "--dataset", DATA,
                                    "--cluster", "test", "--workers", "1,2", "--mode", "both",
                                    "--dry-run"])
    assert ran.exit_code == 0, ran.output
    lines = ran.output.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].split()[:5] == ["strong", "1", "workers", "12", "units"]
    assert lines[3].split()[:5] == ["weak", "2", "workers", "12", "units"]
    assert lines[2].split()[:5] == ["weak", "1", "workers", "6", "units"]
    assert all("distributed.LocalCluster" in line for line in lines)


@pytest.mark.slow
def test_a_real_one_and_two_worker_sweep(tmp_path: Path) -> None:
    output = tmp_path / "scaling"
    ran = CliRunner().invoke(main, [
        "bench", "scaling", "sensor-faults", "--dataset", DATA, "--cluster", "test",
        "--workers", "1,2", "--mode", "both", "--repeats", "1",
        "--output", str(output), "--set", "train.epochs=30"])
    assert ran.exit_code == 0, ran.output
    record = json.loads((output / "scaling.json").read_text())
    strong, weak = record["modes"]["strong"]["points"], record["modes"]["weak"]["points"]
    # Each point ran on a cluster of its size, on the data its mode gives it.
    assert [(p["workers"], p["threads"], p["units"]) for p in strong] == [(1, 1, 12), (2, 2, 12)]
    assert [(p["workers"], p["units"]) for p in weak] == [(1, 6), (2, 12)]
    assert [p["workers_used"] for p in strong] == [1, 2]
    # The figures are the arithmetic of the recorded times.
    t1, t2 = (p["seconds"]["median"] for p in strong)
    assert strong[1]["speedup"] == pytest.approx(t1 / t2)
    assert strong[1]["efficiency"] == pytest.approx(t1 / t2 / 2)
    assert strong[1]["karp_flatt"] == pytest.approx((t2 / t1 - 0.5) / 0.5)
    w1, w2 = (p["seconds"]["median"] for p in weak)
    assert weak[1]["efficiency"] == pytest.approx(w1 / w2)
    # T = a + b/K through two points (a = 2 T2 - T1, b = 2 (T1 - T2)), or on a bound of
    # a, b >= 0 when tiny runs on a busy machine make 2 workers slower (or 2x faster).
    a, b = 2 * t2 - t1, 2 * (t1 - t2)
    if b < 0:
        a, b = (t1 + t2) / 2, 0.0
    elif a < 0:
        a, b = 0.0, (t1 + t2 / 2) / 1.25
    fit = record["modes"]["strong"]["amdahl"]
    assert (fit["serial_seconds"], fit["parallel_seconds"]) == pytest.approx((a, b), rel=1e-6)
    assert strong[0]["throughput"]["units_per_second"] == pytest.approx(12 / t1)
    # Every point computed the same features (and, strong, metrics) as the first.
    assert all(p["valid"] for p in strong + weak), [p["differs"] for p in strong + weak]
    assert strong[0]["features_digest"] == strong[1]["features_digest"]
    # Where the time went: tasks in the features and training stages, threads x wall.
    goes = strong[1]["time_goes"]
    assert goes["features"]["tasks"] > 0 and goes["features"]["compute"] > 0
    assert goes["features"]["writing"] > 0 and goes["training"]["tasks"] > 0
    busy = sum(goes["features"][c] for c in ("compute", "writing", "transfer",
                                             "serialisation", "spill"))
    assert goes["features"]["idle"] == pytest.approx(
        max(2 * goes["features"]["wall"] - busy, 0), abs=1e-6)
    assert sum(stage["wall"] for stage in goes.values()) == pytest.approx(t2, rel=0.05)
    assert strong[1]["scheduler"]["ms_per_task"] > 0
    # The warm-up run, then a restart (new worker addresses): the first point's tasks
    # are still all counted.
    assert record["overhead"]["warmup_seconds"] > 0 and record["overhead"]["restart_seconds"] > 0
    assert all(p["time_goes"]["features"]["tasks"] > 0 for p in strong + weak)
    assert record["overhead"]["measured_seconds"] == pytest.approx(t1 + t2 + w1 + w2)
    assert record["machine"]["cores"] and record["versions"]["dask"]
    # The files a user reads.
    assert (output / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (output / "scaling.md").read_text()
    assert table.count("| strong |") == 2 and table.count("| weak |") == 2
    assert "Amdahl fit" in table and "Weak scaling" in ran.output
    assert sorted(p.name for p in (output / "reports").iterdir()) == [
        "strong-1-workers.html", "strong-2-workers.html", "weak-1-workers.html",
        "weak-2-workers.html"]
    assert CliRunner().invoke(main, ["datasets", "verify", str(output)]).exit_code == 0
