"""A status being edited by one decision: conditions, timeline entries, phase and generation.

Shared by every kind whose status has `conditions`, `timeline`, `timeline_folded`,
`observed_generation` and `phase` (Incident, RollbackRequest, KeyRotation).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, Self, TypeVar

from remediator.api.conditions import Condition, ConditionStatus, set_condition
from remediator.api.timelines import EventType, TimelineEntry
from remediator.engine import timelines

MAX_MESSAGE = 1024


class TimelinedStatus(Protocol):
    conditions: list[Condition]
    timeline: list[TimelineEntry]
    timeline_folded: int
    observed_generation: int | None
    phase: str | None

    def model_dump(self, *, round_trip: bool = False) -> dict[str, Any]: ...

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...


StatusT = TypeVar("StatusT", bound=TimelinedStatus)
IntentT = TypeVar("IntentT")


@dataclasses.dataclass(frozen=True)
class Decision(Generic[StatusT, IntentT]):
    """The status to record, then at most one intent to carry out.

    `entries` are the timeline entries this decision added: each is also posted as an Event.
    `requeue_after` asks to be called again after that long even if nothing changes.
    `held_by` is the reason of the guard that holds the next step back (e.g. `guards.RATE_LIMITED`), "" if none.
    """

    status: StatusT
    changed: bool
    intent: IntentT | None = None
    entries: tuple[TimelineEntry, ...] = ()
    requeue_after: datetime.timedelta | None = None
    held_by: str = ""


class Draft(Generic[StatusT]):
    """Edits to a status copy; `decision()` folds the timeline and derives the phase."""

    def __init__(self, status: StatusT, generation: int, now: datetime.datetime,
                 phase_of: Callable[[Sequence[Condition]], str]) -> None:
        self.original = status
        # A copy rebuilt from the status's data: pydantic's deep copy (copy.deepcopy, field by field)
        # took 7-9 times the CPU, and every decision on every Incident makes one.
        self.status: StatusT = type(status).model_validate(status.model_dump(round_trip=True))
        self.generation = generation
        self.now = now
        self.phase_of = phase_of
        self.entries: list[TimelineEntry] = []

    def condition(self, condition_type: str, value: bool, reason: str, message: str,
                  entry: tuple[EventType, str, str, str | None] | None = None) -> bool:
        """Set a condition; add `entry` to the timeline if the condition actually changed. Returns that."""
        new = Condition(type=condition_type, status=ConditionStatus.TRUE if value else ConditionStatus.FALSE,
                        reason=reason, message=message[:MAX_MESSAGE], last_transition_time=self.now,
                        observed_generation=self.generation)
        before = [c for c in self.status.conditions if c.type == condition_type]
        self.status.conditions = set_condition(self.status.conditions, new, self.now)
        changed = not before or (before[0].status, before[0].reason, before[0].message) != (
            new.status, new.reason, new.message)
        if entry is not None and changed:
            self.add(*entry)
        return changed

    def add(self, event_type: EventType, reason: str, message: str, step: str | None = None) -> None:
        self.entries.append(TimelineEntry(time=self.now, type=event_type, reason=reason,
                                          message=message[:MAX_MESSAGE], step=step))

    def bound(self) -> None:
        """Keep the status within its size budget (kinds whose status can grow override this)."""

    def decision(self, intent: IntentT | None = None, requeue_after: datetime.timedelta | None = None,
                 held_by: str = "") -> Decision[StatusT, IntentT]:
        self.bound()
        self.status.timeline, self.status.timeline_folded = timelines.append(
            self.status.timeline, self.status.timeline_folded, self.entries)
        self.status.observed_generation = self.generation
        self.status.phase = self.phase_of(self.status.conditions)
        return Decision(status=self.status, changed=self.status != self.original, intent=intent,
                        entries=tuple(self.entries), requeue_after=requeue_after, held_by=held_by)
