"""Operator-wide configuration, set from the command line and shared with every handler."""

from __future__ import annotations

import dataclasses
import pathlib


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """What the operator is allowed to do, everywhere."""

    kubeconfig: pathlib.Path | None = None
    dry_run: bool = False
