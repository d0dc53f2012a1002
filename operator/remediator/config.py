"""Operator-wide configuration, set from the command line and shared with every handler."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

from remediator.api.severities import Severity
from remediator.engine import guards, incidents


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """What the operator is allowed to do, everywhere."""

    kubeconfig: pathlib.Path | None = None
    dry_run: bool = False
    allowed_namespaces: frozenset[str] | None = None
    allowed_kinds: frozenset[str] | None = None
    approval_severities: frozenset[Severity] = frozenset(Severity)
    cooldown: datetime.timedelta = guards.DEFAULT_COOLDOWN
    actions_per_minute: int | None = None

    def policy(self) -> incidents.Policy:
        return incidents.Policy(dry_run=self.dry_run, namespaces=self.allowed_namespaces, kinds=self.allowed_kinds,
                                approval=guards.ApprovalPolicy(self.approval_severities), cooldown=self.cooldown)

    def rate_limit(self) -> guards.RateLimit | None:
        return None if self.actions_per_minute is None else guards.RateLimit(self.actions_per_minute)
