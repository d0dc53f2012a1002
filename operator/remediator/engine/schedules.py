"""When a schedule ticks: cron expressions and `@every <duration>`, in an IANA time zone.

Pure: every function takes the instants it needs (the clock is the caller's), and
returns aware UTC datetimes.

A schedule is one of:
- five cron fields (minute hour day-of-month month day-of-week), as croniter reads them;
- a shorthand: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly;
- `@every <duration>` (api/durations.py: "90d", "12h", "1h30m"): ticks at anchor + k*duration, k >= 1.

Cron ticks are wall-clock times in the time zone, mapped to instants the way cron users
expect on the two days a year the clock changes (Europe/Berlin examples):
- spring forward (02:00 -> 03:00): a tick in the skipped hour (02:30) fires once, at the
  instant the clock jumps (03:00 local); a 03:00 tick that day is the same instant;
- fall back (03:00 -> 02:00): a tick in the repeated hour (02:30) fires once, at its first
  occurrence (02:30 summer time), not again an hour later.
`@every` durations are exact (90d is 90 x 24h): they ignore the time zone, so across a
clock change the local hour of a tick moves by the change. Use cron for wall-clock times.

The anchor of `@every` is the KeyRotation's metadata.creationTimestamp: a fixed grid, like
cron's, so each tick is a stable instant a controller can record as handled. (Passing the
last rotation time would move the grid on every on-demand or trigger rotation.)

A controller uses it like this (status.lastScheduleTime records the tick it rotated for):

    schedule = schedules.parse_schedule(spec.schedule, spec.time_zone, anchor=created)
    tick = schedule.due(since=status.last_schedule_time or created, now=now)  # None: nothing due
    upcoming = schedule.next_after(now)  # then windows.next_opening(...) for nextRotationTime

and turns a ScheduleError into Ready=False with `error.reason` and `f"spec.{error}"`.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from remediator.api.durations import parse_duration
from remediator.api.errors import FieldRuleError

_EVERY = re.compile(r"@every[ \t]+(?P<duration>\S+)")
_SHORTHANDS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
# Far enough that a valid expression fires at least once after it (29 February needs 8 years).
_PROBE = datetime(2001, 1, 1)


class ScheduleError(FieldRuleError):
    """A schedule, time zone or window the engine cannot use.

    `field` is the camelCase path below the spec ("schedule", "timeZone",
    "maintenanceWindows[1].schedule"); `reason` is the CamelCase condition reason
    (InvalidSchedule, InvalidTimeZone, InvalidWindow); `message` says what is wrong.
    """

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(field, message)
        self.reason = reason


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; build it with `parse_schedule` or `parse_cron`."""

    expression: str
    """The text as written, e.g. "0 3 1 */3 *" or "@every 90d"."""
    zone: ZoneInfo
    """Where cron fields are read as wall-clock times."""
    every: timedelta | None = None
    """The interval of an `@every` schedule; None for cron."""
    anchor: datetime | None = None
    """The instant an `@every` schedule counts from (its first tick is anchor + every)."""

    def __post_init__(self) -> None:
        if (self.every is None) != (self.anchor is None):
            raise ValueError("an @every schedule needs an anchor, and only it has one")

    def next_after(self, instant: datetime) -> datetime:
        """Return the first tick strictly after `instant` (aware), in UTC."""
        if self.every is not None and self.anchor is not None:
            elapsed = (instant - self.anchor) // self.every
            return (self.anchor + max(elapsed + 1, 1) * self.every).astimezone(UTC)
        wall_ticks = croniter(self.expression, _wall(instant, self.zone))
        while True:
            tick = _instant(wall_ticks.get_next(datetime), self.zone)
            # In a repeated hour, wall times after `instant`'s may be instants before it.
            if tick > instant:
                return tick

    def latest_at_or_before(self, instant: datetime) -> datetime | None:
        """Return the last tick at or before `instant` (aware), in UTC; None when there is none."""
        if self.every is not None and self.anchor is not None:
            elapsed = (instant - self.anchor) // self.every
            return (self.anchor + elapsed * self.every).astimezone(UTC) if elapsed >= 1 else None
        local = instant.astimezone(self.zone)
        # In the second pass of a repeated hour, later wall times already ticked (first pass).
        repeated = _first_offset(local) - _second_offset(local) if local.fold else timedelta()
        wall_ticks = croniter(self.expression, local.replace(tzinfo=None) + repeated + timedelta(seconds=1))
        while True:
            try:
                tick = _instant(wall_ticks.get_prev(datetime), self.zone)
            except CroniterError:
                return None  # before the first tick croniter can find
            if tick <= instant:
                return tick

    def due(self, since: datetime, now: datetime) -> datetime | None:
        """Return the tick to act on now: the latest tick in (since, now], or None.

        `since` is the last tick already handled (or the creationTimestamp when none was):
        ticks missed while the operator was down collapse into the latest one, so a caller
        acting on the returned tick and recording it acts once, not once per missed tick.
        """
        tick = self.latest_at_or_before(now)
        return tick if tick is not None and tick > since else None


def parse_zone(name: str, field: str = "timeZone") -> ZoneInfo:
    """Return the IANA time zone `name` ("UTC", "Europe/Berlin").

    Raises ScheduleError (reason InvalidTimeZone, at `field`) for a name the tz database lacks.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            field, "InvalidTimeZone", f"{name!r} is not an IANA time zone such as UTC or Europe/Berlin"
        ) from None


def parse_cron(expression: str, zone: ZoneInfo, field: str = "schedule") -> Schedule:
    """Return the cron schedule (five fields or an @ shorthand) evaluated in `zone`.

    Raises ScheduleError (reason InvalidSchedule, at `field`) for anything else, for fields
    out of range, and for an expression that never fires (such as 30 February).
    """
    text = expression.strip()
    if text.startswith("@") and text not in _SHORTHANDS:
        raise _invalid(field, f"{expression!r} is not a cron shorthand ({', '.join(sorted(_SHORTHANDS))})")
    if not text.startswith("@") and len(text.split()) != 5:
        raise _invalid(field, f"{expression!r} does not have the five cron fields (minute hour day month weekday)")
    try:
        croniter(text, _PROBE).get_next(datetime)
    except CroniterError as e:
        never = "failed to find" in str(e)
        problem = "never fires" if never else f"is not a valid cron expression ({e})"
        raise _invalid(field, f"{expression!r} {problem}") from None
    return Schedule(expression=text, zone=zone)


def parse_schedule(expression: str, time_zone: str = "UTC", *, anchor: datetime) -> Schedule:
    """Return the schedule of a KeyRotation: cron, @ shorthand or `@every <duration>`.

    `anchor` (aware) is where `@every` counts from: the KeyRotation's creationTimestamp.
    Raises ScheduleError: InvalidTimeZone at "timeZone", InvalidSchedule at "schedule".
    """
    zone = parse_zone(time_zone)
    every = _EVERY.fullmatch(expression.strip())
    if every is None:
        return parse_cron(expression, zone)
    try:
        interval = parse_duration(every["duration"])
    except ValueError as e:
        raise _invalid("schedule", f"@every needs a duration: {e}") from None
    if interval <= timedelta():
        raise _invalid("schedule", f"{expression!r}: the interval must be longer than zero")
    return Schedule(expression=expression.strip(), zone=zone, every=interval, anchor=anchor)


def _invalid(field: str, message: str) -> ScheduleError:
    return ScheduleError(field, "InvalidSchedule", message)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _first_offset(local: datetime) -> timedelta:
    return local.replace(fold=0).utcoffset() or timedelta()


def _second_offset(local: datetime) -> timedelta:
    return local.replace(fold=1).utcoffset() or timedelta()


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock tick: its first occurrence, or the clock's jump over it."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == wall:
        return first
    # `wall` was skipped: the clock jumped between these two readings of it.
    return _clock_change(wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first, zone)


def _clock_change(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (before, after] with the UTC offset `after` has (to the second)."""
    offset = after.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return after.replace(microsecond=0)
