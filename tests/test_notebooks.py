"""Notebooks run top to bottom in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

#: Plots each notebook must show.
MIN_IMAGES = {"01-quickstart.ipynb": 3, "02-data-parallel-training.ipynb": 1,
              "03-forecast-and-alerts.ipynb": 4, "04-etl.ipynb": 2, "05-scaling.ipynb": 2}
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in stored.cells if cell.cell_type == "code"), \
        f"{path.name} is committed with outputs; clear them"
    # The kernel inherits this: a free dashboard port instead of 8787.
    monkeypatch.setenv("DASK_SUANLI__CLUSTER__PROFILES__LOCAL__DASHBOARD_ADDRESS", "127.0.0.1:0")
    client = NotebookClient(stored, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    executed = client.execute()
    images = [o for cell in executed.cells for o in cell.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= MIN_IMAGES[path.name]
