"""`suanli datasets list|info|generate|verify`."""

from __future__ import annotations

from pathlib import Path

import dask.config
import numpy as np
from click.testing import CliRunner

from suanli import datasets
from suanli.pipelines.cli import main


def test_generate_by_size_then_info_and_verify(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "traffic.zarr"
    made = runner.invoke(main, ["datasets", "generate", "traffic", str(out), "--size", "4MiB",
                                "--units", "10", "--seed", "3"])
    assert made.exit_code == 0, made.output
    ds = datasets.open(out)
    assert ds.sizes["unit"] == 10
    assert abs(ds.signal.nbytes - 4 * 2**20) < 0.02 * 4 * 2**20
    expected = datasets.open(f"synthetic://traffic?units=10&duration={ds.sizes['time'] * 300}s"
                             "&seed=3")
    np.testing.assert_array_equal(ds.signal.values, expected.signal.values)
    info = runner.invoke(main, ["datasets", "info", str(out), "--values"])
    assert info.exit_code == 0 and "unit=10" in info.output and "nan" in info.output
    assert runner.invoke(main, ["datasets", "verify", str(out)]).exit_code == 0
    next(p for p in (out / "signal").rglob("*") if p.is_file()).unlink()
    broken = runner.invoke(main, ["datasets", "verify", str(out)])
    assert broken.exit_code == 1 and "missing (variable 'signal'" in broken.output


def test_generate_parquet_reads_back_as_the_same_panel(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "vitals.parquet"
    made = runner.invoke(main, ["datasets", "generate", "vitals", str(out), "--units", "2",
                                "--duration", "1h"])
    assert made.exit_code == 0, made.output
    back = datasets.open(out)
    original = datasets.open("synthetic://vitals?units=2&duration=1h&seed=0")
    assert list(back.channel.values) == list(original.channel.values)
    np.testing.assert_array_equal(back.signal.values, original.signal.values)
    assert datasets.sample_rate(back) == 1.0


def test_list_shows_catalog_and_generators_and_bad_input_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    with dask.config.set({"suanli.datasets.catalog.plant-a": {
            "uri": "s3://plant-a/*.parquet", "description": "line A"}}):
        listed = runner.invoke(main, ["datasets", "list"])
    assert "plant-a" in listed.output and "line A" in listed.output
    assert "synthetic://vitals" in listed.output
    unknown = runner.invoke(main, ["datasets", "generate", "weather", str(tmp_path / "w")])
    assert unknown.exit_code == 2 and "unknown scenario" in unknown.output
    missing = runner.invoke(main, ["datasets", "info", str(tmp_path / "nothing.zarr")])
    assert missing.exit_code == 2 and "nothing.zarr" in missing.output
