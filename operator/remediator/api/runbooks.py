"""The Runbook kind: reusable steps, the alerts that trigger them, and defaults for the Incidents."""

import re
from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, Field, model_validator

from remediator.api.bases import SpecModel, StatusModel, list_map
from remediator.api.conditions import Condition
from remediator.api.durations import Duration, PositiveDuration
from remediator.api.errors import FieldRuleError
from remediator.api.severities import SeverityField
from remediator.api.steps import Step, check_unique_step_names


class MatchOperator(StrEnum):
    """How a matcher compares a label, as in Alertmanager routes."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class AlertMatcher(SpecModel):
    """A condition on one alert label."""

    name: str = Field(min_length=1, max_length=1024)
    """The label name."""
    value: str = Field(max_length=1024)
    """The value, or for =~ and !~ a regular expression matched against the whole value."""
    op: MatchOperator = MatchOperator.EQUAL
    """=, !=, =~ or !~."""

    @model_validator(mode="after")
    def _regex_compiles(self) -> Self:
        if self.op in (MatchOperator.REGEX, MatchOperator.NOT_REGEX):
            try:
                re.compile(self.value)
            except re.error as error:
                raise FieldRuleError("value", f"is not a regular expression: {error}") from None
        return self


class RunbookTrigger(SpecModel):
    """Alerts that start this Runbook: all matchers must hold (and the alertname, when set)."""

    alertname: str | None = Field(default=None, min_length=1, max_length=1024)
    """The alert's alertname label must equal this."""
    matchers: list[AlertMatcher] = Field(default_factory=list)
    """Further conditions on the alert's labels."""

    @model_validator(mode="after")
    def _matches_something_specific(self) -> Self:
        # A trigger without conditions would start the runbook for every alert.
        if self.alertname is None and not self.matchers:
            raise FieldRuleError("", "must set alertname or at least one matcher")
        return self


class RunbookDefaults(SpecModel):
    """Settings of the Incidents created from this Runbook."""

    severity: SeverityField | None = None
    """Severity of created Incidents; when unset, taken from the alert."""
    requires_approval: bool = False
    """Every step waits for approval."""
    cooldown: Duration = "10m"
    """After an Incident from this Runbook, alerts do not start another for this long."""
    dry_run: bool = False
    """Created Incidents plan and record without acting."""
    escalate_after: PositiveDuration | None = None
    """Escalate unresolved Incidents after this long; by severity when unset."""


class RunbookSpec(SpecModel):
    """Reusable remediation steps and the alerts that trigger them."""

    description: str | None = Field(default=None, max_length=32768)
    """What the Runbook is for."""
    triggers: list[RunbookTrigger] = Field(default_factory=list)
    """Alerts that create an Incident from this Runbook; none: only Incidents that reference it use it."""
    defaults: RunbookDefaults = Field(default_factory=RunbookDefaults)
    """Settings of the Incidents created from this Runbook."""
    steps: list[Step] = Field(min_length=1, max_length=50, json_schema_extra=list_map("name"))
    """Remediation steps, run in order."""

    @model_validator(mode="after")
    def _unique_step_names(self) -> Self:
        check_unique_step_names(self.steps)
        return self


class RunbookStatus(StatusModel):
    """How the Runbook has been used."""

    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    """Ready when the Runbook is accepted."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed for."""
    last_triggered_at: AwareDatetime | None = None
    """When an alert last created an Incident from this Runbook."""
    incidents_created: int = Field(default=0, ge=0)
    """How many Incidents alerts have created from this Runbook."""
