"""What asks for a rotation: a request (the remediator.dev/rotate annotation, written by an Incident's
rotateKey step), a new spec.trigger value, or a schedule tick. Creating a KeyRotation asks for none.

The value that asked is recorded (status.lastRequest, lastTrigger, lastScheduleTime) in the same status
write that records the rotation, before anything else happens, so each one rotates exactly once.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from remediator.api.keyrotations import (
    EMERGENCY_ANNOTATION,
    ROTATE_ANNOTATION,
    KeyRotationSpec,
    KeyRotationStatus,
)
from remediator.engine.key_rotations import schedule_decisions

REQUEST = "request"
TRIGGER = "trigger"
SCHEDULE = "schedule"


@dataclasses.dataclass(frozen=True)
class Ask:
    """One rotation asked for: its id, what asked, and whether it is an emergency."""

    id: str
    cause: str
    emergency: bool
    tick: datetime.datetime | None = None  # the schedule tick it rotates for


def is_first_sight(status: KeyRotationStatus) -> bool:
    """Never reconciled: the trigger value found now is the baseline, not a change."""
    return status.observed_generation is None and status.last_trigger is None


def pending(spec: KeyRotationSpec, status: KeyRotationStatus, annotations: Mapping[str, str],
            due: schedule_decisions.Due | None = None, generation: int = 1) -> Ask | None:
    """The rotation asked for and not yet acted on: a request first (it may be an emergency), then a
    trigger change, then a due schedule tick. None when nothing new asks (a trigger seen first at
    creation is a baseline)."""
    request = annotations.get(ROTATE_ANNOTATION, "").strip()
    if request and request != status.last_request:
        emergency = spec.emergency or annotations.get(EMERGENCY_ANNOTATION, "").strip().lower() == "true"
        return Ask(request, REQUEST, emergency)
    if spec.trigger is not None and spec.trigger != status.last_trigger and not is_first_sight(status):
        return Ask(spec.trigger, TRIGGER, spec.emergency)
    if due is not None and due.tick is not None:
        return Ask(schedule_decisions.rotation_id(generation, due.tick), SCHEDULE, spec.emergency, due.tick)
    return None


def record(ask: Ask, spec: KeyRotationSpec, status: KeyRotationStatus) -> None:
    """Mark what asked as acted on (in the status about to be written with the rotation)."""
    if ask.cause == REQUEST:
        status.last_request = ask.id
    elif ask.cause == TRIGGER:
        status.last_trigger = spec.trigger
    elif ask.tick is not None:
        status.last_schedule_time = ask.tick
