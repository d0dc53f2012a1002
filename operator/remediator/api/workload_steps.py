"""Steps that act on workloads: scale, restart, roll back, wait for a rollout."""

from enum import StrEnum
from typing import Self

from pydantic import ConfigDict, Field, model_validator

from remediator.api.bases import INT32_MAX, INT32_MIN, SpecModel, one_of_required, require_exactly_one
from remediator.api.durations import PositiveDuration
from remediator.api.errors import FieldRuleError
from remediator.api.intorstrings import CountOrPercent
from remediator.api.jobs import JobTemplate
from remediator.api.selectors import LabelSelector
from remediator.api.targets import DeploymentTarget, ScalableTarget, Target

SCALE_CHANGES = ("replicas", "by", "factor")


class ScaleStep(SpecModel):
    """Change a workload's replica count: to a number, by a number, or by a factor, within bounds."""

    model_config = ConfigDict(json_schema_extra=one_of_required(SCALE_CHANGES))

    target: ScalableTarget
    """The Deployment or StatefulSet to scale."""
    replicas: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """Set the replica count to this number."""
    by: int | None = Field(default=None, ge=INT32_MIN, le=INT32_MAX)
    """Add this many replicas (negative: remove); not zero."""
    factor: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Multiply the replica count by this (rounded up)."""
    min_replicas: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """Never scale below this many replicas."""
    max_replicas: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """Never scale above this many replicas."""
    max_factor: float | None = Field(default=None, ge=1, allow_inf_nan=False)
    """Largest allowed ratio between the new and the current replica count, either way."""

    @model_validator(mode="after")
    def _consistent_bounds(self) -> Self:
        require_exactly_one(self, SCALE_CHANGES)
        if self.by == 0:
            raise FieldRuleError("by", "must not be zero")
        low, high = self.min_replicas, self.max_replicas
        if low is not None and high is not None and low > high:
            raise FieldRuleError("minReplicas", f"must not exceed maxReplicas ({low} > {high})")
        if self.replicas is not None:
            if low is not None and self.replicas < low:
                raise FieldRuleError("replicas", f"must not be below minReplicas ({self.replicas} < {low})")
            if high is not None and self.replicas > high:
                raise FieldRuleError("replicas", f"must not exceed maxReplicas ({self.replicas} > {high})")
        if self.factor is not None and self.max_factor is not None:
            if not 1 / self.max_factor <= self.factor <= self.max_factor:
                raise FieldRuleError(
                    "factor", f"must lie between 1/maxFactor and maxFactor ({self.factor}, {self.max_factor})"
                )
        return self


class RestartMode(StrEnum):
    """How a restart replaces pods."""

    ROLLOUT = "rollout"
    """A rolling restart, as `kubectl rollout restart` does."""
    DELETE_PODS = "deletePods"
    """Delete the selected pods, a few at a time, and let the controller recreate them."""


class RestartStep(SpecModel):
    """Restart a workload's pods: a rolling restart, or deleting selected pods a few at a time."""

    target: Target
    """The workload to restart."""
    mode: RestartMode = RestartMode.ROLLOUT
    """rollout (a rolling restart) or deletePods."""
    selector: LabelSelector | None = None
    """For deletePods: which of the workload's pods to delete (required there)."""
    max_unavailable: CountOrPercent = 1
    """For deletePods: how many pods (or what percentage) may be down at once."""

    @model_validator(mode="after")
    def _selector_fits_mode(self) -> Self:
        if self.mode == RestartMode.DELETE_PODS and self.selector is None:
            raise FieldRuleError("selector", "is required when mode is deletePods")
        if self.mode == RestartMode.ROLLOUT and self.selector is not None:
            raise FieldRuleError("selector", "applies only when mode is deletePods")
        return self


class RollbackFields(SpecModel):
    """What a rollback does; shared by the `rollback` step and RollbackRequest."""

    target: DeploymentTarget
    """The Deployment to roll back."""
    to_revision: int | None = Field(default=None, ge=1, le=INT32_MAX)
    """Revision to return to; the previous one when unset."""
    stop_application: bool = False
    """Scale the Deployment to zero first and restore its replica count after."""
    migration_job: JobTemplate | None = None
    """A Job that rolls the database schema back, run while the application is stopped."""
    rollout_timeout: PositiveDuration = "10m"
    """How long the rolled-back Deployment may take to become available."""

    @model_validator(mode="after")
    def _migration_needs_stopped_application(self) -> Self:
        # A running app must never be pointed at a half-rolled-back schema.
        if self.migration_job is not None and not self.stop_application:
            raise FieldRuleError("stopApplication", "must be true when migrationJob is set")
        return self


class RollbackStep(RollbackFields):
    """Roll a Deployment back to a previous (or given) revision and wait for the rollout."""


class WaitForRolloutStep(SpecModel):
    """Wait until a workload's rollout is complete (bounded by the step's timeout)."""

    target: Target
    """The workload to watch."""
