"""A step of an Incident or Runbook, the step kinds not covered elsewhere, and a step's status."""

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, ConfigDict, Field, WithJsonSchema, model_validator

from remediator.api.bases import SpecModel, StatusModel, one_of_required, require_exactly_one
from remediator.api.database_steps import DatabaseStep
from remediator.api.durations import Duration, PositiveDuration, format_duration, parse_duration
from remediator.api.errors import FieldRuleError
from remediator.api.http_steps import HttpCheck, NotifyStep
from remediator.api.jobs import JobTemplate
from remediator.api.keyrotations import KeyRotationSpec
from remediator.api.patterns import DNSLabel
from remediator.api.references import ObjectReference
from remediator.api.workload_steps import RestartStep, RollbackStep, ScaleStep, WaitForRolloutStep

STEP_KINDS = (
    "scale",
    "restart",
    "rollback",
    "database",
    "job",
    "rotate_key",
    "http_check",
    "wait_for_rollout",
    "notify",
)


class JobStep(SpecModel):
    """Run a Job to completion."""

    template: JobTemplate
    """What the Job runs."""


class RotateKeyStep(SpecModel):
    """Rotate keys now (one rotation of a KeyRotation) and wait until it has rotated and verified."""

    model_config = ConfigDict(json_schema_extra=one_of_required(["key_rotation_ref", "spec"]))

    key_rotation_ref: ObjectReference | None = None
    """A KeyRotation in the same namespace."""
    spec: KeyRotationSpec | None = None
    """Or an inline KeyRotation, created as <incident>-<step> and owned by the Incident."""
    emergency: bool = False
    """A compromised key: the old values are revoked after the emergency grace period (default at once)."""

    @model_validator(mode="after")
    def _ref_or_spec(self) -> Self:
        require_exactly_one(self, ["key_rotation_ref", "spec"])
        return self


class OnFailure(StrEnum):
    """What happens to the incident when a step fails for good."""

    ABORT = "abort"
    """Stop: later steps do not run and the incident is Failed."""
    CONTINUE = "continue"
    """Record the failure and go on with the next step."""
    ESCALATE = "escalate"
    """Escalate the incident and stop."""


class Step(SpecModel):
    """One remediation step: common settings plus exactly one step kind."""

    model_config = ConfigDict(json_schema_extra=one_of_required(STEP_KINDS))

    name: DNSLabel
    """Unique name of the step within the list."""
    requires_approval: bool = False
    """Wait for a person to approve before the step acts."""
    on_failure: OnFailure = OnFailure.ABORT
    """abort, continue or escalate when the step fails after its retries."""
    optional: bool = False
    """The incident may resolve without this step: its failure is recorded (Degraded) and later steps run."""
    timeout: PositiveDuration | None = None
    """How long one attempt may take."""
    retries: int = Field(default=0, ge=0, le=10)
    """Further attempts after a failed one."""
    retry_backoff: Duration = "10s"
    """Wait between attempts."""
    verify: bool = False
    """A verification (it checks, it does not change): still run when the alert resolves under
    onResolve: runVerification."""
    scale: ScaleStep | None = None
    restart: RestartStep | None = None
    rollback: RollbackStep | None = None
    database: DatabaseStep | None = None
    job: JobStep | None = None
    rotate_key: RotateKeyStep | None = None
    http_check: HttpCheck | None = None
    wait_for_rollout: WaitForRolloutStep | None = None
    notify: NotifyStep | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        require_exactly_one(self, STEP_KINDS)
        check = self.http_check
        if self.timeout is not None and check is not None:
            # Fewer healthy answers than successThreshold fit in the timeout: the step could never pass.
            needed = (check.success_threshold - 1) * parse_duration(check.interval)
            if parse_duration(self.timeout) < needed:
                raise FieldRuleError(
                    "timeout",
                    f"must be at least {format_duration(needed)} for httpCheck to see successThreshold "
                    f"({check.success_threshold}) healthy answers {check.interval} apart ({self.timeout})",
                )
        return self

    @property
    def kind(self) -> str:
        """The (snake_case) name of the step kind that is set, e.g. "http_check"."""
        return require_exactly_one(self, STEP_KINDS)


def check_unique_step_names(steps: Sequence[Step]) -> None:
    """Raise FieldRuleError at `steps[j].name` for the first name used twice; else return None."""
    first_index: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.name in first_index:
            also = first_index[step.name]
            message = f"duplicate step name {step.name!r} (also steps[{also}])"
            raise FieldRuleError(f"steps[{index}].name", message)
        first_index[step.name] = index


class StepState(StrEnum):
    """Where a step is in its life."""

    PENDING = "Pending"
    AWAITING_APPROVAL = "AwaitingApproval"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class StepStatus(StatusModel):
    """What has happened to one step."""

    name: DNSLabel
    """Name of the step."""
    state: StepState = StepState.PENDING
    """Pending, AwaitingApproval, Running, Succeeded, Failed or Skipped."""
    attempts: int = Field(default=0, ge=0)
    """Attempts started so far."""
    started_at: AwareDatetime | None = None
    """When the first attempt started."""
    finished_at: AwareDatetime | None = None
    """When the step succeeded, failed for good or was skipped."""
    message: str = ""
    """The latest outcome, for people."""
    result: Annotated[
        dict[str, Any], WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    ] = Field(default_factory=dict)
    """What the step found or did, as the step kind reports it."""
    idempotency_key: str | None = None
    """Recorded before acting, so an attempt resumed after a crash does not act twice."""
    attempt_started_at: AwareDatetime | None = None
    """When the current attempt started (its timeout counts from here)."""
    retry_at: AwareDatetime | None = None
    """When the next attempt may start, after a failed one."""
    approved_by: str | None = Field(default=None, max_length=256)
    """Who approved the step, when it needed approval."""
