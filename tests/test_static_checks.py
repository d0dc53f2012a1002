"""The code passes the project's static checks: ruff, mypy --strict, and the import contracts."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    result = run(str(BIN / "ruff"), "check", "operator", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(600)
def test_mypy_strict_finds_nothing_in_the_operator() -> None:
    result = run(str(BIN / "mypy"), "operator/remediator")
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_and_api_import_no_io_libraries() -> None:
    """The import-linter contract in pyproject.toml: engine/api never import kopf, kubernetes, psycopg, httpx."""
    result = run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr
