"""The Runbook kind: reusable steps, the alerts that trigger them, and defaults for the Incidents."""

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Self

import pydantic
from pydantic import AwareDatetime, Field, WithJsonSchema, model_validator

from remediator.api import alert_templates
from remediator.api.bases import SpecModel, StatusModel, list_map
from remediator.api.conditions import Condition
from remediator.api.durations import Duration, PositiveDuration
from remediator.api.errors import FieldRuleError, validation_messages
from remediator.api.incidents import OnResolve
from remediator.api.patterns import DNS_LABEL, DNS_SUBDOMAIN, Matches
from remediator.api.schedules import TimeZone
from remediator.api.severities import SeverityField
from remediator.api.steps import Step, check_unique_step_names
from remediator.api.windows import MaintenanceWindow

# Prometheus' label name rule.
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
LabelName = Annotated[str, Matches(LABEL_NAME, "a Prometheus label name", max_length=1024)]
# What a placeholder stands for while a Runbook is checked: any valid Kubernetes name would do.
SAMPLE_VALUE = "x"


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


class DuringMaintenance(StrEnum):
    """What an Incident from an alert does while a maintenance window is open."""

    WAIT = "wait"
    RUN = "run"


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
    max_remediations: int | None = Field(default=None, ge=1, le=1000)
    """Loop guard: after this many Incidents for one target within remediationWindow, the next is created
    Escalated (RemediationLoop) and does not act by itself; default: the operator's (3)."""
    remediation_window: PositiveDuration | None = None
    """The loop guard's window; default: the operator's (1h)."""
    max_consecutive_failures: int | None = Field(default=None, ge=1, le=1000)
    """After this many Failed Incidents in a row for one target, new ones wait for approval; default: the
    operator's (2)."""
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list, max_length=32)
    """While one of these (or one of the operator's --maintenance-window) is open, Incidents from alerts are
    created with their plan, but no step starts before it closes (MaintenanceWindow)."""
    time_zone: TimeZone = "UTC"
    """The IANA time zone the maintenance windows' schedules are read in."""
    during_maintenance: DuringMaintenance = DuringMaintenance.WAIT
    """wait (the default): steps wait for the window to close; run: Incidents act in windows too."""


StepTemplate = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
]
"""A step whose strings may hold placeholders; it must be a valid step once they are filled in."""


def _check_template(template: str) -> str:
    try:
        alert_templates.references(template)
    except ValueError as error:
        raise FieldRuleError("", str(error)) from None
    return template


def render_step(template: dict[str, Any], labels: dict[str, str], annotations: dict[str, str]) -> Step:
    """The step a template becomes for one alert: each placeholder filled in, then validated as a Step.

    Every value put into a step must be a Kubernetes name (DNS-1123 subdomain): a label cannot smuggle
    a path, a URL or anything else into what the operator acts on. In a URL's host a value must be one
    DNS label, so the host keeps the shape the Runbook gave it: `http://{{ labels.service }}.shop.svc`
    cannot become `http://metadata.internal.shop.svc` or point at another namespace's `db.other.svc`
    through a dotted label. Raises ValueError saying why not.
    """
    def checked(rule: Matches) -> Callable[[alert_templates.Reference, str], None]:
        def check(reference: alert_templates.Reference, value: str) -> None:
            try:
                rule.check(value)
            except ValueError as error:
                raise ValueError(f"{reference.source}.{reference.name}: {error}") from None
        return check

    def fill_text(text: str) -> str:
        host_end = _url_host_end(text)
        return (alert_templates.render(text[:host_end], labels, annotations, check=checked(HOST_PART))
                + alert_templates.render(text[host_end:], labels, annotations, check=checked(KUBERNETES_NAME)))

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return fill_text(value)
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    filled = fill(template)
    try:
        return Step.model_validate(filled)
    except pydantic.ValidationError as error:
        raise ValueError("; ".join(validation_messages(error, prefix="step"))) from None


KUBERNETES_NAME = Matches(
    DNS_SUBDOMAIN, "a Kubernetes name (lowercase letters, digits, '-' and '.')", max_length=253)
HOST_PART = Matches(DNS_LABEL, "one DNS label in a URL's host (lowercase letters, digits and '-')", max_length=63)


def _url_host_end(text: str) -> int:
    """Where the scheme and host of a URL template end (0 when the text is not a URL): the first '/',
    '?' or '#' after '://'. A placeholder holds none of these, so it is wholly on one side."""
    scheme_end = text.find("://")
    if scheme_end < 0:
        return 0
    ends = [found for found in (text.find(mark, scheme_end + 3) for mark in "/?#") if found >= 0]
    return min(ends, default=len(text))


class IncidentTemplate(SpecModel):
    """What an Incident created from an alert says and does."""

    summary: str = Field(default="{{ alertname }}", min_length=1, max_length=1024)
    """The Incident's summary; may use {{ alertname }}, {{ labels.NAME }} and {{ annotations.NAME }}."""
    severities: dict[str, SeverityField] = Field(default_factory=dict)
    """The Incident's severity by the alert's `severity` label, e.g. {critical: P1, warning: P3}."""
    steps: list[StepTemplate] = Field(default_factory=list, max_length=50)
    """Steps whose values may use placeholders, e.g. target name {{ labels.deployment }}; each value
    filled in must be a Kubernetes name (in a URL's host, one DNS label). When set, alerts run these
    instead of spec.steps."""
    on_resolve: OnResolve = OnResolve.KEEP_RUNNING
    """What the Incident does when its alerts resolve: keepRunning, cancelPending or runVerification."""

    @model_validator(mode="after")
    def _templates_valid(self) -> Self:
        _check_template(self.summary)
        sample: list[Step] = []
        for index, template in enumerate(self.steps):
            if "{{" in str(template.get("name", "")):
                raise FieldRuleError(f"steps[{index}].name", "must not use placeholders")
            try:
                _references_in(template)  # raises for an unknown placeholder
                sample.append(render_step(template, _Sample(), _Sample()))
            except ValueError as error:
                raise FieldRuleError(f"steps[{index}]", str(error)) from None
        check_unique_step_names(sample)
        return self

    def label_references(self) -> set[str]:
        """The labels the summary and steps read (alertname included when used)."""
        found = {r.name for r in alert_templates.references(self.summary) if r.source == "labels"}
        for template in self.steps:
            found |= {r.name for r in _references_in(template) if r.source == "labels"}
        return found


class _Sample(dict[str, str]):
    """Every label and annotation, with a value any name check accepts."""

    def get(self, key: str, default: Any = None) -> str:
        return SAMPLE_VALUE


def _references_in(value: Any) -> list[alert_templates.Reference]:
    if isinstance(value, str):
        return alert_templates.references(value)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [reference for item in items for reference in _references_in(item)]


class RunbookSpec(SpecModel):
    """Reusable remediation steps and the alerts that trigger them."""

    description: str | None = Field(default=None, max_length=32768)
    """What the Runbook is for."""
    triggers: list[RunbookTrigger] = Field(default_factory=list)
    """Alerts that create an Incident from this Runbook; none: only Incidents that reference it use it."""
    defaults: RunbookDefaults = Field(default_factory=RunbookDefaults)
    """Settings of the Incidents created from this Runbook."""
    steps: list[Step] = Field(default_factory=list, max_length=50, json_schema_extra=list_map("name"))
    """Remediation steps, run in order; may be empty only when incident.steps is set."""
    incident: IncidentTemplate = Field(default_factory=IncidentTemplate)
    """How an alert's Incident is written: summary, severity and templated steps."""
    incident_key: list[LabelName] | None = Field(default=None, max_length=32)
    """The labels whose values tell one alert episode from another (with the Runbook); default:
    alertname, namespace and every label the incident template reads."""

    @model_validator(mode="after")
    def _unique_step_names(self) -> Self:
        if not self.steps and not self.incident.steps:
            raise FieldRuleError("steps", "must not be empty unless incident.steps is set")
        check_unique_step_names(self.steps)
        return self

    def key_labels(self) -> list[str]:
        """The labels of the incident key, sorted: incidentKey, or the default."""
        if self.incident_key is not None:
            return sorted(set(self.incident_key))
        return sorted({"alertname", "namespace", *self.incident.label_references()})


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
