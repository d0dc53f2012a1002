"""The RollbackRequest kind: roll a Deployment back, optionally with a migration rollback first."""

from enum import StrEnum

from pydantic import Field

from remediator.api.bases import StatusModel, list_map
from remediator.api.conditions import Condition
from remediator.api.references import ObjectReference
from remediator.api.timelines import TimelineEntry
from remediator.api.workload_steps import RollbackFields


class RollbackConditionType(StrEnum):
    """The condition types of a RollbackRequest."""

    ACCEPTED = "Accepted"
    APPLICATION_STOPPED = "ApplicationStopped"
    MIGRATION_ROLLED_BACK = "MigrationRolledBack"
    ROLLED_BACK = "RolledBack"
    ROLLOUT_COMPLETE = "RolloutComplete"
    READY = "Ready"


class RollbackRequestSpec(RollbackFields):
    """Roll a Deployment back to a previous (or given) revision, then wait for the rollout."""

    incident_ref: ObjectReference | None = None
    """The Incident this rollback is part of."""


class RollbackRequestStatus(StatusModel):
    """How far the rollback has got."""

    phase: str | None = None
    """One-word summary of the conditions, for display."""
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    """Accepted, ApplicationStopped, MigrationRolledBack, RolledBack, RolloutComplete, Ready."""
    from_revision: int | None = Field(default=None, ge=0)
    """The Deployment's revision before the rollback."""
    to_revision: int | None = Field(default=None, ge=0)
    """The revision rolled back to."""
    to_template_hash: str | None = Field(default=None, max_length=63)
    """The pod-template-hash of the revision rolled back to: Kubernetes renumbers a revision it returns to."""
    original_replicas: int | None = Field(default=None, ge=0)
    """The replica count before the application was stopped, restored afterwards."""
    migration_job_name: str | None = None
    """Name of the migration Job the operator created, so a retry finds it instead of starting another."""
    timeline: list[TimelineEntry] = Field(default_factory=list)
    """What happened, oldest first; the oldest entries are folded away when it grows long."""
    timeline_folded: int = Field(default=0, ge=0)
    """How many of the oldest timeline entries were folded away."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed for."""
    lease_epoch: int | None = Field(default=None, ge=0)
    """With --leader-elect: the Lease's leaseTransitions when the replica that last wrote this status took it;
    a replica holding an older epoch never records or carries out an intent here."""
    lease_name: str | None = None
    """With --leader-elect: the Lease whose leaseTransitions leaseEpoch counts (each shard has its own Lease);
    epochs of different Leases are never compared."""
