"""The timeline: what the operator did and saw, in order, mirrored as Kubernetes Events."""

from enum import StrEnum

from pydantic import AwareDatetime, Field

from remediator.api.bases import StatusModel
from remediator.api.patterns import DNSLabel, Reason


class EventType(StrEnum):
    """The Kubernetes Event type an entry is mirrored as."""

    NORMAL = "Normal"
    WARNING = "Warning"


class TimelineEntry(StatusModel):
    """One thing that happened, when, and (for step work) in which step."""

    time: AwareDatetime
    """When it happened."""
    type: EventType
    """Normal, or Warning for failures and escalations."""
    reason: Reason
    """What happened, in CamelCase (StepSucceeded, Escalated, ...)."""
    message: str = Field(default="", max_length=32768)
    """What happened, for people."""
    step: DNSLabel | None = None
    """Name of the step the entry is about, if any."""
