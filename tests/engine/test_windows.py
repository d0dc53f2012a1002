"""Maintenance windows: a scheduled rotation waits for the next one, an automated Incident waits out
an open one; recurring (cron plus duration, in the owner's time zone) or absolute (start and end)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.api.errors import validation_messages
from remediator.api.windows import MaintenanceWindow
from remediator.engine import windows
from remediator.engine.schedules import ScheduleError

from .support import utc


def compiled(*specs: dict[str, Any], time_zone: str = "UTC") -> list[windows.Window]:
    return windows.compile_windows([MaintenanceWindow.model_validate(spec) for spec in specs], time_zone)


# Saturdays 02:00-06:00 Berlin time; 2026-11-28 is a Saturday (CET, UTC+1).
SATURDAY_NIGHT = {"schedule": "0 2 * * 6", "duration": "4h"}
CHRISTMAS_FREEZE_LIFTED = {"start": "2026-12-27T08:00:00+01:00", "end": "2026-12-27T12:00:00Z"}


@pytest.mark.parametrize(("instant", "open_", "next_opening"), [
    (utc(2026, 11, 27, 12), False, utc(2026, 11, 28, 1)),
    (utc(2026, 11, 28, 0, 59, 59), False, utc(2026, 11, 28, 1)),
    (utc(2026, 11, 28, 1), True, utc(2026, 11, 28, 1)),  # opens at the tick (inclusive)
    (utc(2026, 11, 28, 4, 59, 59), True, utc(2026, 11, 28, 4, 59, 59)),
    (utc(2026, 11, 28, 5), False, utc(2026, 12, 5, 1)),  # closed at tick + duration (exclusive)
    # Across the clock change: 02:00 CEST on Saturday 24 October 2026 is 00:00 UTC.
    (utc(2026, 10, 23, 12), False, utc(2026, 10, 24, 0)),
    (utc(2026, 10, 24, 3, 59), True, utc(2026, 10, 24, 3, 59)),
    (utc(2026, 10, 24, 4), False, utc(2026, 10, 31, 1)),
])
def test_a_recurring_window_opens_at_each_local_tick_for_its_duration(
    instant: datetime, open_: bool, next_opening: datetime
) -> None:
    saturday = compiled(SATURDAY_NIGHT, time_zone="Europe/Berlin")
    assert windows.is_open(saturday, instant) is open_
    assert windows.next_opening(saturday, instant) == next_opening


@pytest.mark.parametrize(("instant", "open_", "next_opening"), [
    (utc(2026, 12, 27, 6, 59), False, utc(2026, 12, 27, 7)),
    (utc(2026, 12, 27, 7), True, utc(2026, 12, 27, 7)),  # start is inclusive
    (utc(2026, 12, 27, 11, 59, 59), True, utc(2026, 12, 27, 11, 59, 59)),
    (utc(2026, 12, 27, 12), False, None),  # end is exclusive; it never opens again
])
def test_an_absolute_window_is_open_from_start_until_end(
    instant: datetime, open_: bool, next_opening: datetime | None
) -> None:
    lifted = compiled(CHRISTMAS_FREEZE_LIFTED)
    assert windows.is_open(lifted, instant) is open_
    assert windows.next_opening(lifted, instant) == next_opening


def test_with_several_windows_any_open_one_counts_and_the_earliest_opening_is_next() -> None:
    both = compiled(SATURDAY_NIGHT, CHRISTMAS_FREEZE_LIFTED)  # Saturdays 02:00-06:00 UTC here
    assert windows.next_opening(both, utc(2026, 12, 26, 7)) == utc(2026, 12, 27, 7)
    assert windows.is_open(both, utc(2026, 12, 27, 8))
    assert windows.next_opening(both, utc(2026, 12, 27, 13)) == utc(2027, 1, 2, 2)
    assert not windows.is_open([], utc(2026, 12, 27, 8))
    assert windows.next_opening([], utc(2026, 12, 27, 8)) is None


def test_an_open_period_ends_when_no_window_covers_it_any_more() -> None:
    nightly = compiled({"schedule": "0 22 * * *", "duration": "3h"}, {"schedule": "0 0 * * *", "duration": "2h"},
                       {"start": "2026-06-01T10:00:00Z", "end": "2026-06-01T11:00:00Z"})
    # 22:00-01:00 and 00:00-02:00 overlap: the period lasts until 02:00.
    assert windows.closes_at(nightly, utc(2026, 6, 1, 23)) == utc(2026, 6, 2, 2)
    assert windows.closes_at(nightly, utc(2026, 6, 1, 10, 30)) == utc(2026, 6, 1, 11)
    assert windows.closes_at(nightly, utc(2026, 6, 1, 12)) is None
    always = compiled({"schedule": "@hourly", "duration": "2h"})
    # Always open: the search stops after 64 chained periods of 2h, and the caller looks again then.
    assert windows.closes_at(always, utc(2026, 6, 1, 12)) == utc(2026, 6, 6, 20)


@pytest.mark.parametrize(("spec", "message"), [
    ({"schedule": "0 2 * * 6"}, "window.duration: a window with a schedule needs a duration"),
    ({"duration": "4h"}, "window.schedule: a window with a duration needs a schedule"),
    ({"start": "2026-12-27T07:00:00Z"}, "window.end: an absolute window needs start and end"),
    ({"schedule": "0 2 * * 6", "duration": "4h", "start": "2026-12-27T07:00:00Z"},
     "window: set schedule and duration, or start and end, not both kinds"),
    ({}, "window: set schedule and duration, or start and end"),
    ({"start": "2026-12-27T07:00:00Z", "end": "2026-12-27T07:00:00Z"}, "window.end: must be after start"),
    ({"start": "2026-12-27T07:00:00", "end": "2026-12-27T08:00:00Z"}, "window.start: Input should have timezone info"),
    ({"schedule": "0 2 * * 6", "duration": "0s"}, "window.duration: must be longer than zero"),
    ({"schedule": "@every 1d", "duration": "1h"}, "window.schedule: '@every 1d' is not a cron schedule"),
])
def test_a_malformed_window_is_refused_by_the_model_with_its_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        MaintenanceWindow.model_validate(spec)
    assert any(problem.startswith(message) for problem in validation_messages(refused.value, prefix="window"))


@pytest.mark.parametrize(("spec", "time_zone", "field", "reason", "message"), [
    ({"schedule": "0 25 * * *", "duration": "1h"}, "UTC", "maintenanceWindows[1].schedule", "InvalidWindow",
     "'0 25 * * *' is not a valid cron expression"),
    ({"schedule": "0 0 30 2 *", "duration": "1h"}, "UTC", "maintenanceWindows[1].schedule", "InvalidWindow",
     "'0 0 30 2 *' never fires"),
    ({"schedule": "0 2 * * *", "duration": "1h"}, "Europe/Atlantis", "timeZone", "InvalidTimeZone",
     "'Europe/Atlantis' is not an IANA time zone"),
])
def test_a_window_the_engine_cannot_evaluate_is_refused_with_its_field_and_reason(
    spec: dict[str, Any], time_zone: str, field: str, reason: str, message: str
) -> None:
    with pytest.raises(ScheduleError) as refused:
        compiled(SATURDAY_NIGHT, spec, time_zone=time_zone)
    assert (refused.value.field, refused.value.reason) == (field, reason)
    assert refused.value.message.startswith(message)


def test_the_flag_form_gives_the_same_windows_as_the_spec_form() -> None:
    assert windows.parse_window_flag("0 2 * * 6|4h") == MaintenanceWindow(schedule="0 2 * * 6", duration="4h")
    assert windows.parse_window_flag(" 0 2 * * 6 | 4h ") == MaintenanceWindow(schedule="0 2 * * 6", duration="4h")
    absolute = windows.parse_window_flag("2026-12-24T00:00:00Z/2026-12-27T00:00:00+01:00")
    assert (absolute.start, absolute.end) == (utc(2026, 12, 24), utc(2026, 12, 26, 23))


@pytest.mark.parametrize(("flag", "message"), [
    ("0 2 * * 6", 'expected "CRON|DURATION"'),
    ("0 2 * * 6|", "window.duration: "),
    ("0 2 * * 6|4 hours", "window.duration: '4 hours' is not a duration"),
    ("0 2 30 2 *|4h", "'0 2 30 2 *' never fires"),
    ("0 2 * * 6 *|4h", "window.schedule: '0 2 * * 6 *' is not a cron schedule"),
    ("2026-12-27T00:00:00Z/2026-12-24T00:00:00Z", "window.end: must be after start"),
    ("yesterday/tomorrow", "window.start: "),
])
def test_a_bad_flag_value_is_refused_naming_the_value(flag: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^maintenance window ") as refused:
        windows.parse_window_flag(flag)
    assert repr(flag) in str(refused.value) and message in str(refused.value)


INSTANTS = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
WINDOWS = st.lists(st.one_of(
    st.builds(lambda cron, hours: {"schedule": cron, "duration": f"{hours}h"},
              st.sampled_from(["0 2 * * 6", "30 2 * * *", "0 */6 * * *", "0 3 1 */3 *"]), st.integers(1, 30)),
    st.builds(lambda start, hours: {"start": start.isoformat(), "end": (start + timedelta(hours=hours))
              .isoformat()}, INSTANTS, st.integers(1, 100)),
), min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(WINDOWS, st.sampled_from(["UTC", "Europe/Berlin", "Australia/Lord_Howe"]), INSTANTS)
def test_the_next_opening_is_open_and_no_window_opens_before_it(
    specs: list[dict[str, Any]], time_zone: str, instant: datetime
) -> None:
    evaluated = compiled(*specs, time_zone=time_zone)
    opening = windows.next_opening(evaluated, instant)
    assert (opening == instant) == windows.is_open(evaluated, instant)
    if opening is not None:
        assert opening >= instant and windows.is_open(evaluated, opening)
    if opening is not None and opening > instant:
        for between in (instant + (opening - instant) / 2, opening - timedelta(microseconds=1)):
            assert not windows.is_open(evaluated, between)
    closing = windows.closes_at(evaluated, instant)
    assert (closing is not None) == windows.is_open(evaluated, instant)
    if closing is not None:
        assert closing > instant and windows.is_open(evaluated, closing - timedelta(microseconds=1))
