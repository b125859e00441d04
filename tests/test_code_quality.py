"""ruff, mypy and the import-linter layering contracts, run as tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_layering_contract_holds() -> None:
    # Beside this Python (the project's .venv), whatever the PATH says.
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert tool, "import-linter is part of the test extra"
    done = _run(tool)
    assert done.returncode == 0, done.stdout + done.stderr
    # Between the packages (2), and inside pipelines: its layers, training, compute (3).
    assert "5 kept, 0 broken" in done.stdout


def test_ruff_is_clean() -> None:
    done = _run(sys.executable, "-m", "ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    done = _run(sys.executable, "-m", "mypy", "-p", "suanli.cluster", "-p", "suanli.datasets",
                "-p", "suanli.pipelines", "-m", "suanli.errors", "-m", "suanli.command",
                "-m", "suanli.processes")
    assert done.returncode == 0, done.stdout + done.stderr


def test_packages_import_without_cupy() -> None:
    code = ("import sys; sys.modules['cupy'] = None\n"
            "from suanli import cluster, datasets, pipelines\n"
            "pipelines.step_names()\n"
            "assert 'cupy' not in [m for m in sys.modules if sys.modules[m] is not None]")
    done = _run(sys.executable, "-c", code)
    assert done.returncode == 0, done.stderr


def test_only_the_cluster_module_creates_clients() -> None:
    """Every pipeline gets its cluster through suanli.cluster; nothing else makes a Client."""
    import re

    pattern = re.compile(r"\bClient\(")
    offenders = [str(path.relative_to(ROOT)) for folder in ("datasets", "pipelines")
                 for path in (ROOT / folder).rglob("*.py") if pattern.search(path.read_text())]
    assert offenders == []
