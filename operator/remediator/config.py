"""Operator-wide configuration, set from the command line and shared with every handler."""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

from remediator.api.severities import Severity
from remediator.api.windows import MaintenanceWindow
from remediator.engine import allow_lists, guards, incidents, rollbacks, shards
from remediator.engine.key_rotations import views as key_rotations

# Chosen from the 1,000-Incident burst (docs/benchmarks.md): the operator's memory peaks with what is in
# flight at once, and more than this many at once made the burst no faster.
DEFAULT_MAX_CONCURRENT_RECONCILES = 64


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """What the operator is allowed to do, everywhere."""

    kubeconfig: pathlib.Path | None = None
    dry_run: bool = False
    allowed_namespaces: frozenset[str] | None = None
    allowed_kinds: frozenset[str] | None = None
    approval_severities: frozenset[Severity] = frozenset(Severity)
    self_approval: bool = False
    cooldown: datetime.timedelta = guards.DEFAULT_COOLDOWN
    max_cooldown: datetime.timedelta = guards.DEFAULT_MAX_COOLDOWN
    max_replicas: int = incidents.DEFAULT_MAX_REPLICAS
    rate_limit_actions: int | None = None
    rate_limit_window: datetime.timedelta = datetime.timedelta(minutes=1)
    api_timeout_seconds: float = 30.0
    # Incidents reconciled at once (--max-concurrent-reconciles); the rest wait their turn.
    max_concurrent_reconciles: int | None = DEFAULT_MAX_CONCURRENT_RECONCILES
    allowed_http_hosts: frozenset[str] | None = None
    allowed_database_hosts: frozenset[str] | None = None
    jobs: allow_lists.JobPolicy = dataclasses.field(default_factory=allow_lists.JobPolicy)
    max_remediations: int = 3
    remediation_window: datetime.timedelta = datetime.timedelta(hours=1)
    max_consecutive_failures: int = 2
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    restart_coalesce: datetime.timedelta = key_rotations.DEFAULT_RESTART_COALESCE
    # The namespaces whose Incidents, RollbackRequests and KeyRotations it acts on (--shard, --namespace-selector).
    scope: shards.Scope = dataclasses.field(default_factory=shards.Scope)

    def policy(self) -> incidents.Policy:
        return incidents.Policy(dry_run=self.dry_run, namespaces=self.allowed_namespaces, kinds=self.allowed_kinds,
                                approval=guards.ApprovalPolicy(self.approval_severities, self.self_approval),
                                cooldown=self.cooldown,
                                max_cooldown=max(self.max_cooldown, self.cooldown), max_replicas=self.max_replicas,
                                jobs=self.jobs)

    def rollback_policy(self) -> rollbacks.Policy:
        return rollbacks.Policy(dry_run=self.dry_run, namespaces=self.allowed_namespaces, kinds=self.allowed_kinds,
                                jobs=self.jobs)

    def key_rotation_policy(self) -> key_rotations.Policy:
        return key_rotations.Policy(namespaces=self.allowed_namespaces, kinds=self.allowed_kinds,
                                    restart_coalesce=self.restart_coalesce, dry_run=self.dry_run,
                                    max_cooldown=max(self.max_cooldown, self.cooldown))

    def rate_limit(self) -> guards.RateLimit | None:
        if self.rate_limit_actions is None:
            return None
        return guards.RateLimit(self.rate_limit_actions, self.rate_limit_window)
