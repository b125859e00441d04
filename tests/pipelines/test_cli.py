"""The ``suanli`` command as a user runs it: real processes, exit codes, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from suanli.pipelines.pipeline import load_pipeline

SMALL = "synthetic://telemetry?units=40&minutes=1&seed=2"


def suanli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "suanli.pipelines.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ,
                               "DASK_SUANLI__CLUSTER__PROFILES__LOCAL__DASHBOARD_ADDRESS":
                               "127.0.0.1:0"})


def test_run_succeeds_with_overrides_and_prints_a_summary(tmp_path: Path) -> None:
    done = suanli("run", "sensor-faults", "--dataset", SMALL, "--output", "out",
                  "--set", "train.epochs=40", "--set", "split.seed=3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout and "run directory out" in done.stdout
    assert "dashboard http://127.0.0.1:" in done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["pipeline"]["train"]["epochs"] == 40
    # Batch-friendly: with no terminal, progress is a few plain lines, not a bar
    # redrawn per tick, and Dask adds no spurious warnings.
    assert "\r" not in done.stderr and "Completed" not in done.stderr
    assert "features: 100% (" in done.stderr and "training: 100% (40/40 epochs" in done.stderr
    progress = [line for line in done.stderr.splitlines() if "% (" in line]
    assert len(progress) <= 24, progress
    assert "WARNING" not in done.stderr, done.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (["run", "no-such-pipeline"], "unknown pipeline 'no-such-pipeline'"),
    (["run", "sensor-faults", "--set", "window.sizes=3"], "--set key 'window.sizes'"),
    (["run", "sensor-faults", "--dataset", "missing.zarr"], "no such Zarr store"),
    (["run", "sensor-faults", "--cluster", "nowhere"], "'nowhere'"),
    (["run", "sensor-faults", "--dataset", "synthetic://telemetry?units=x"], "should be int"),
    (["run", "sensor-faults", "--set", "train.optimizer=rmsprop"], "optimizer 'rmsprop'"),
    (["run", "sensor-faults", "--set", "window.size=99999999"], "at most the series length"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, args: list[str],
                                                 fragment: str) -> None:
    done = suanli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr and fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_output_holding_another_run_exits_2(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.json").write_text("{}")
    done = suanli("run", "sensor-faults", "--output", "old", cwd=tmp_path)
    assert done.returncode == 2 and "holds another run" in done.stderr
    assert (tmp_path / "old" / "manifest.json").read_text() == "{}"


def test_pipelines_list_and_show(tmp_path: Path) -> None:
    done = suanli("pipelines", "list", cwd=tmp_path)
    assert done.returncode == 0 and "band_power" in done.stdout
    listed = done.stdout.split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in listed] == ["sensor-faults", "series-classify",
                                                    "traffic-forecast", "vitals-alerts"]
    assert all(len(line) < 100 for line in listed)  # one line each
    shown = suanli("pipelines", "show", "traffic-forecast", cwd=tmp_path)
    assert shown.returncode == 0 and "# Exogenous channels" in shown.stdout  # comments kept
    (tmp_path / "mine.yaml").write_text(shown.stdout)
    assert load_pipeline(str(tmp_path / "mine.yaml")) == load_pipeline("traffic-forecast")
    unknown = suanli("pipelines", "show", "traffic", cwd=tmp_path)
    assert unknown.returncode == 2 and "shipped pipelines: sensor-faults" in unknown.stderr


def test_predict_command_runs_without_a_cluster(tmp_path: Path) -> None:
    done = suanli("run", "sensor-faults", "--dataset", SMALL, "--output", "run",
                  "--set", "train.epochs=30", "--log-format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # --log-format json: the result on standard output, progress and messages as JSON
    # lines on standard error.
    result = json.loads(done.stdout)
    assert result["event"] == "result" and result["output"] == "run"
    assert result["metrics"]["accuracy"] > 0.5
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert {"progress", "message"} <= {e["event"] for e in events}, done.stderr
    assert {"stage": "training", "percent": 100, "done": 30, "total": 30, "unit": "epochs"}\
        .items() <= [e for e in events if e["event"] == "progress"][-1].items()
    done = suanli("predict", "run/model.npz", SMALL, "--output", "p.zarr", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2400 windows from 40 units" in done.stdout
    assert "accuracy against the dataset's labels" in done.stdout
    assert (tmp_path / "p.zarr").is_dir()
    bad = suanli("predict", "run/metrics.json", SMALL, cwd=tmp_path)
    assert bad.returncode == 2 and "error:" in bad.stderr
