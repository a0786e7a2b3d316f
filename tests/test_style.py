"""One style for the tree (ruff.toml): the formatter's layout at one line length, sorted absolute imports,
and no line that the formatter is told to leave alone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff")
pytestmark = pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[test]')")


def ruff(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    assert RUFF is not None
    return subprocess.run([RUFF, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_tree_is_formatted() -> None:
    run = ruff("format", "--check", ".")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_imports_and_line_length_hold() -> None:
    run = ruff("check", ".")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_nothing_opts_out_of_the_formatter() -> None:
    python = [p for p in REPO.rglob("*.py") if "build" not in p.relative_to(REPO).parts[:1]]
    marked = [str(p.relative_to(REPO)) for p in python if "fmt: " + "skip" in p.read_text(encoding="utf-8")]
    assert marked == []


def test_a_relative_import_is_refused(tmp_path: Path) -> None:
    """The check really runs with the project's rules: a relative import in a copy of the config fails it."""
    shutil.copy(REPO / "ruff.toml", tmp_path / "ruff.toml")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("from .other import thing\n\nprint(thing)\n")
    run = ruff("check", ".", cwd=tmp_path)
    assert run.returncode == 1 and "TID252" in run.stdout, run.stdout
