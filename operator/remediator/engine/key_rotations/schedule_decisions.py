"""When the schedule asks for a rotation: the tick due now (missed ticks collapse into the latest), held back
until a maintenance window is open; and when the next scheduled rotation will be (status.nextRotationTime).

`spec.suspend` pauses scheduled rotations only; the latest tick missed meanwhile rotates once on resume,
like a tick missed while the operator was down.
"""

from __future__ import annotations

import dataclasses
import datetime

from remediator.api.keyrotations import KeyRotationSpec, KeyRotationStatus
from remediator.engine import schedules, windows


@dataclasses.dataclass(frozen=True)
class Due:
    """`tick`: the schedule tick to rotate for now (None: none); `next_time`: when the schedule rotates next
    (a tick still to come, or the opening of the window a due tick waits for; None: never, or no schedule)."""

    tick: datetime.datetime | None = None
    next_time: datetime.datetime | None = None


def scheduled(spec: KeyRotationSpec, status: KeyRotationStatus, created: datetime.datetime,
              now: datetime.datetime) -> Due:
    """What the schedule asks for at `now`. Raises schedules.ScheduleError for a schedule, time zone or
    window the engine cannot use (its field is relative to the spec)."""
    if spec.schedule is None:
        return Due()
    schedule = schedules.parse_schedule(spec.schedule, spec.time_zone, anchor=created)
    compiled = windows.compile_windows(spec.maintenance_windows, spec.time_zone)
    if spec.suspend:
        return Due()
    tick = schedule.due(since=status.last_schedule_time or created, now=now)
    if tick is not None:
        if not compiled or windows.is_open(compiled, now):
            return Due(tick=tick)
        return Due(next_time=windows.next_opening(compiled, now))
    upcoming = schedule.next_after(now)
    if not compiled:
        return Due(next_time=upcoming)
    return Due(next_time=windows.next_opening(compiled, upcoming))


def rotation_id(generation: int, tick: datetime.datetime) -> str:
    """`<generation>-<tick>`: the same tick always gets the same id (a replay finds its staged values)."""
    return f"{generation}-{tick.astimezone(datetime.UTC):%Y%m%dT%H%M%SZ}"
