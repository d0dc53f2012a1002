"""The Incident kind: one incident and its ordered remediation steps."""

from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, ConfigDict, Field, JsonValue, model_validator

from remediator.api.bases import INT32_MAX, SpecModel, StatusModel, list_map
from remediator.api.conditions import Condition
from remediator.api.durations import Duration, PositiveDuration
from remediator.api.errors import FieldRuleError
from remediator.api.patterns import Reason
from remediator.api.references import ObjectReference
from remediator.api.severities import SeverityField
from remediator.api.steps import Step, StepStatus, check_unique_step_names
from remediator.api.timelines import TimelineEntry


class IncidentConditionType(StrEnum):
    """The condition types of an Incident."""

    READY = "Ready"
    ACKNOWLEDGED = "Acknowledged"
    AWAITING_APPROVAL = "AwaitingApproval"
    MITIGATED = "Mitigated"
    VERIFIED = "Verified"
    RESOLVED = "Resolved"
    ESCALATED = "Escalated"
    FAILED = "Failed"
    DEGRADED = "Degraded"
    ALERT_RESOLVED = "AlertResolved"


# An incident is a runbook, not a program: the bound keeps every object far below etcd's limit.
MAX_STEPS = 50


class LoopGuardHold(SpecModel):
    """Why the receiver's loop guard held an Incident from its creation (every step waits for approval).

    Stored in the spec by the create itself, so whichever replica reconciles the Incident first records it,
    even when the replica that created it died right after the create.
    """

    reason: Reason
    """RemediationLoop (the target was remediated too often) or ConsecutiveFailures."""
    message: str = Field(default="", max_length=1024)
    """Why, for people."""
    escalate: bool = False
    """Whether the Incident is Escalated from the start (condition Escalated=True with this reason)."""


class AlertSource(SpecModel):
    """The Alertmanager alert an Incident was created from."""

    alertname: str | None = Field(default=None, max_length=1024)
    """The alert's alertname label."""
    fingerprint: str | None = Field(default=None, max_length=64)
    """Alertmanager's fingerprint of the alert."""
    labels: dict[str, str] = Field(default_factory=dict)
    """The alert's labels."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """The alert's annotations."""
    starts_at: AwareDatetime | None = None
    """When the alert started firing."""
    hold: LoopGuardHold | None = None
    """Set by the receiver when its loop guard held this Incident: recorded as Escalated or a timeline entry."""


class AlertState(StrEnum):
    """An alert's state as Alertmanager reports it."""

    FIRING = "firing"
    RESOLVED = "resolved"


class OnResolve(StrEnum):
    """What an Incident does when every alert it was created from has resolved (AlertResolved=True).

    A step in flight (running, or retrying after an attempt) always finishes: none is ever killed.
    """

    KEEP_RUNNING = "keepRunning"
    """Steps go on; a step still waiting for approval is Skipped (AlertResolved)."""
    CANCEL_PENDING = "cancelPending"
    """No further step starts: every step not yet started is Skipped."""
    RUN_VERIFICATION = "runVerification"
    """Only the steps marked `verify: true` still start; the others not yet started are Skipped."""


# Alerts recorded on one Incident; older ones are folded into a count (an alert storm must not grow it).
MAX_ALERTS = 100


class AlertRecord(StatusModel):
    """One alert of the Incident's episode, as Alertmanager last reported it."""

    fingerprint: str = Field(max_length=64)
    """Alertmanager's fingerprint of the alert's labels."""
    starts_at: AwareDatetime
    """When the alert started firing."""
    ends_at: AwareDatetime | None = None
    """When it ended (or, while firing, when Alertmanager will consider it ended unless resent)."""
    status: AlertState
    """firing or resolved."""


# What runs is fixed when the Incident is created: the API server refuses a change of the steps, the
# runbookRef or dryRun (the operator refuses it too, Ready=False StepsChanged, for clusters without the rule).
FROZEN_STEPS_RULE: dict[str, JsonValue] = {
    "rule": "has(self.runbookRef) == has(oldSelf.runbookRef) && (!has(self.runbookRef) || "
            "self.runbookRef == oldSelf.runbookRef) && has(self.steps) == has(oldSelf.steps) && "
            "(!has(self.steps) || self.steps == oldSelf.steps) && "
            "has(self.dryRun) == has(oldSelf.dryRun) && (!has(self.dryRun) || self.dryRun == oldSelf.dryRun)",
    "message": "steps, runbookRef and dryRun cannot change once the Incident exists: create a new Incident",
    "reason": "FieldValueForbidden",
}


class IncidentSpec(SpecModel):
    """An incident and the steps that remediate it."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [FROZEN_STEPS_RULE]})

    severity: SeverityField
    """P0 (most severe) to P3; SEV1 to SEV4 are accepted and read as P0 to P3."""
    summary: str = Field(min_length=1, max_length=1024)
    """One line saying what is wrong."""
    description: str | None = Field(default=None, max_length=32768)
    """More about the incident."""
    runbook_ref: ObjectReference | None = None
    """A Runbook whose steps run before this Incident's own steps."""
    steps: list[Step] = Field(default_factory=list, max_length=MAX_STEPS, json_schema_extra=list_map("name"))
    """Remediation steps, run in order (at most 50); may be empty only with a runbookRef."""
    dry_run: bool = False
    """Plan and record every step without acting."""
    escalate_after: PositiveDuration | None = None
    """Escalate when not resolved by then; by severity when unset (P0 5m, P1 15m, P2 1h, P3 4h)."""
    cooldown: Duration | None = None
    """After this incident acts on a target, other incidents leave that target alone this long."""
    source: AlertSource | None = None
    """The alert this incident was created from, filled in by the Alertmanager receiver."""
    on_resolve: OnResolve = OnResolve.KEEP_RUNNING
    """When its alerts resolve: keepRunning, cancelPending or runVerification."""
    maintenance_until: AwareDatetime | None = None
    """Created from an alert during a maintenance window: no step starts before this instant."""
    retry: int = Field(default=0, ge=0, le=INT32_MAX)
    """Raise it to run a failed incident again from its failed step (`kubectl remediator retry`);
    steps that need approval wait for a new one."""

    @model_validator(mode="after")
    def _has_steps(self) -> Self:
        if not self.steps and self.runbook_ref is None:
            raise FieldRuleError("steps", "must not be empty unless runbookRef is set")
        check_unique_step_names(self.steps)
        return self


class IncidentStatus(StatusModel):
    """What the operator has done about the incident."""

    phase: str | None = None
    """One-word summary of the conditions, for display."""
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    """Ready, Acknowledged, AwaitingApproval, Mitigated, Verified, Resolved, Escalated, Failed."""
    steps: list[StepStatus] = Field(default_factory=list, json_schema_extra=list_map("name"))
    """What has happened to each step."""
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
    detected_at: AwareDatetime | None = None
    """When the incident was detected (the alert started, or the object was created)."""
    acknowledged_at: AwareDatetime | None = None
    """When the operator (or a person) acknowledged the incident."""
    mitigated_at: AwareDatetime | None = None
    """When the remediation steps finished successfully."""
    resolved_at: AwareDatetime | None = None
    """When the incident was verified and resolved."""
    runbook_steps: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)
    """The referenced Runbook's steps, copied when the incident started (they run before spec.steps)."""
    steps_digest: str | None = Field(default=None, max_length=64)
    """A digest of spec.steps and spec.runbookRef when the incident started: later changes are refused."""
    ignored_approval: str | None = Field(default=None, max_length=1024)
    """The approve annotation the Incident arrived with (or had when it was retried), ignored until it changes."""
    retried: int = Field(default=0, ge=0, le=INT32_MAX)
    """The spec.retry value last acted on."""
    alerts: list[AlertRecord] = Field(default_factory=list, max_length=MAX_ALERTS)
    """The alerts of this episode (the Alertmanager receiver records them), oldest first, bounded."""
    alerts_folded: int = Field(default=0, ge=0)
    """How many of the oldest alerts were folded away."""
    truncated_alerts: int = Field(default=0, ge=0)
    """The most alerts Alertmanager left out of one notification for this Incident (its max_alerts)."""
