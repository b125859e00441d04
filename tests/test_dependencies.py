"""Every import is declared in pyproject.toml (deptry), so a fresh machine that installs
only what is declared can run everything: the packages, tests, benchmarks, notebooks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def deptry(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deptry", "--no-ansi", "."], cwd=root,
                          capture_output=True, text=True, timeout=300)


def test_every_import_is_declared() -> None:
    done = deptry(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_fails_on_an_undeclared_import(tmp_path: Path) -> None:
    """The same check, on a copy of the declarations plus one module that imports
    aiohttp (installed here only as s3fs's dependency) and one nothing provides."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "probe.py").write_text("import aiohttp\nimport surely_not_a_package\n")
    done = deptry(tmp_path)
    assert done.returncode != 0
    report = done.stdout + done.stderr
    assert "DEP003 'aiohttp' imported but it is a transitive dependency" in report, report
    assert "DEP001 'surely_not_a_package' imported but missing" in report, report
