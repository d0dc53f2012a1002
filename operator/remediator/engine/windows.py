"""Whether a maintenance window is open, and when the next one opens or the open one closes.

Pure, clock injected. A list of windows is open when any of them is; an empty list is
never open (a caller for whom "no windows" means "any time" checks for that itself).
Windows are half-open: open at the opening instant, closed at the closing one.

The flag form (`--maintenance-window`, repeatable), evaluated in UTC:
- `"CRON|DURATION"`: `"0 2 * * 6|4h"` opens every Saturday at 02:00 for four hours;
- `"START/END"`: `"2026-12-24T00:00:00Z/2026-12-27T00:00:00Z"`, two RFC 3339 instants.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pydantic

from remediator.api.durations import parse_duration
from remediator.api.errors import validation_messages
from remediator.api.windows import MaintenanceWindow
from remediator.engine.schedules import Schedule, ScheduleError, parse_cron, parse_zone

# Chained windows (each opening before the last closes) are followed this far, no further.
_MAX_CHAINED = 64


@dataclass(frozen=True)
class Window:
    """One window ready to evaluate: recurring (`opens`, `duration`) or absolute (`start`, `end`)."""

    opens: Schedule | None = None
    duration: timedelta = timedelta()
    start: datetime | None = None
    end: datetime | None = None

    def open_period(self, instant: datetime) -> tuple[datetime, datetime] | None:
        """Return (opened, closes) of the period containing `instant`, or None when closed then."""
        if self.opens is not None:
            opened = self.opens.latest_at_or_before(instant)
            if opened is not None and instant < opened + self.duration:
                return opened, opened + self.duration
            return None
        if self.start is not None and self.end is not None and self.start <= instant < self.end:
            return self.start, self.end
        return None

    def next_opening(self, instant: datetime) -> datetime | None:
        """Return the first opening strictly after `instant`; None when it never opens again."""
        if self.opens is not None:
            return self.opens.next_after(instant)
        return self.start if self.start is not None and instant < self.start else None


def compile_windows(
    windows: Sequence[MaintenanceWindow], time_zone: str = "UTC", field: str = "maintenanceWindows"
) -> list[Window]:
    """Return the windows ready to evaluate, their cron schedules read in `time_zone`.

    Raises ScheduleError: InvalidTimeZone at "timeZone", or InvalidWindow at
    `field[i].schedule` for a schedule that is out of range or never fires.
    """
    zone = parse_zone(time_zone)
    compiled = []
    for index, window in enumerate(windows):
        if window.schedule is None or window.duration is None:
            compiled.append(Window(start=window.start, end=window.end))
            continue
        where = f"{field}[{index}].schedule"
        try:
            opens = parse_cron(window.schedule, zone, field=where)
        except ScheduleError as e:
            raise ScheduleError(e.field, "InvalidWindow", e.message) from None
        compiled.append(Window(opens=opens, duration=parse_duration(window.duration)))
    return compiled


def is_open(windows: Sequence[Window], instant: datetime) -> bool:
    """Whether any of `windows` is open at `instant`."""
    return any(window.open_period(instant) is not None for window in windows)


def next_opening(windows: Sequence[Window], instant: datetime) -> datetime | None:
    """Return when a window is next open at or after `instant`: `instant` itself when one is open.

    None when none will ever open (only absolute windows, all past) or the list is empty.
    A controller waiting for a window sets its next-run time to this and requeues.
    """
    if is_open(windows, instant):
        return instant
    openings = [opening for window in windows if (opening := window.next_opening(instant)) is not None]
    return min(openings, default=None)


def closes_at(windows: Sequence[Window], instant: datetime) -> datetime | None:
    """Return when the windows open at `instant` stop covering time; None when none is open.

    Windows that open before the open ones close extend the period. Past 64 chained windows
    (a window that is always open) it returns where the search stopped: the caller looks again then.
    """
    closing: datetime | None = None
    at = instant
    for _ in range(_MAX_CHAINED):
        periods = [period for window in windows if (period := window.open_period(at)) is not None]
        if not periods:
            break
        closing = max(closes for _, closes in periods)
        at = closing
    return closing


def parse_window_flag(text: str) -> MaintenanceWindow:
    """Return the window of a `--maintenance-window` value: "CRON|DURATION" or "START/END".

    Raises ValueError with a message naming the value and the expected forms, for a malformed
    value, a bad duration or instant, an end not after start, or a schedule that never fires.
    """
    expected = 'expected "CRON|DURATION" (e.g. "0 2 * * 6|4h") or "START/END" (two RFC 3339 instants)'
    if "|" in text:
        schedule, _, duration = text.partition("|")
        fields: dict[str, str] = {"schedule": schedule.strip(), "duration": duration.strip()}
    elif "/" in text:
        start, _, end = text.partition("/")
        fields = {"start": start.strip(), "end": end.strip()}
    else:
        raise ValueError(f"maintenance window {text!r}: {expected}")
    try:
        window = MaintenanceWindow.model_validate(fields)
        compile_windows([window])
    except pydantic.ValidationError as e:
        problems = "; ".join(validation_messages(e, prefix="window"))
        raise ValueError(f"maintenance window {text!r}: {problems}") from None
    except ScheduleError as e:
        raise ValueError(f"maintenance window {text!r}: {e.message}") from None
    return window
