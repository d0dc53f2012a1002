"""docs/operations.md documents every flag of `remediator run`: the help the command prints is the list."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
OPERATIONS = REPO / "docs" / "operations.md"


def run_flags() -> set[str]:
    """Every long option `remediator run --help` prints (each option line of its 'options:' list)."""
    help_text = subprocess.run([sys.executable, "-m", "remediator", "run", "--help"], capture_output=True,
                               text=True, check=True).stdout
    options = help_text.split("options:", 1)[1]
    return {flag for line in options.splitlines() if line.startswith("  -")
            for flag in re.findall(r"--[a-z][a-z0-9-]*", line)} - {"--help"}


def documented_flags() -> set[str]:
    """The flags in the first column of the tables of the 'Flags of `remediator run`' section."""
    section = OPERATIONS.read_text().split("## Flags of `remediator run`", 1)[1].split("\n## ", 1)[0]
    first_cells = [row.split("|")[1] for row in section.splitlines() if row.startswith("| `")]
    return {flag for cell in first_cells for flag in re.findall(r"`(--[a-z][a-z0-9-]*)", cell)}


def test_every_flag_of_remediator_run_is_documented_in_operations_md() -> None:
    flags = run_flags()
    assert len(flags) > 30  # the parse found the option list
    assert sorted(flags - documented_flags()) == []


def test_operations_md_documents_no_flag_remediator_run_does_not_have() -> None:
    assert sorted(documented_flags() - run_flags()) == []
