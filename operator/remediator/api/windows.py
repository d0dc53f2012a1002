"""Maintenance windows: when automated work may (KeyRotation) or may not (Runbook) run.

A window is either recurring, `{schedule, duration}` (it opens at each tick of the cron
schedule, read in the owner's timeZone, and stays open for `duration`), or absolute,
`{start, end}` (RFC 3339 instants). Both are half-open: open from the opening instant on,
closed at the closing one.
"""

from typing import Self

from pydantic import AwareDatetime, ConfigDict, model_validator

from remediator.api.bases import SpecModel
from remediator.api.durations import PositiveDuration
from remediator.api.errors import FieldRuleError
from remediator.api.schedules import CronSchedule

_FORMS = (("schedule", "duration"), ("start", "end"))


class MaintenanceWindow(SpecModel):
    """`{schedule, duration}` (recurring) or `{start, end}` (absolute), not both."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": list(form)} for form in _FORMS]})

    schedule: CronSchedule | None = None
    """Cron (five fields or an @ shorthand): the window opens at each tick."""
    duration: PositiveDuration | None = None
    """How long a recurring window stays open, e.g. "2h"."""
    start: AwareDatetime | None = None
    """When an absolute window opens (RFC 3339, e.g. 2026-12-24T22:00:00Z)."""
    end: AwareDatetime | None = None
    """When an absolute window closes; after start."""

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        recurring = self.schedule is not None or self.duration is not None
        absolute = self.start is not None or self.end is not None
        if recurring and absolute:
            raise FieldRuleError("", "set schedule and duration, or start and end, not both kinds")
        if not recurring and not absolute:
            raise FieldRuleError("", "set schedule and duration, or start and end")
        if recurring and self.schedule is None:
            raise FieldRuleError("schedule", "a window with a duration needs a schedule")
        if recurring and self.duration is None:
            raise FieldRuleError("duration", "a window with a schedule needs a duration")
        if absolute and (self.start is None or self.end is None):
            raise FieldRuleError("end" if self.end is None else "start", "an absolute window needs start and end")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise FieldRuleError("end", f"must be after start ({self.end.isoformat()} <= {self.start.isoformat()})")
        return self
