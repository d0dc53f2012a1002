"""A KeyRotation's schedule ticks when its owner expects: quarterly in Berlin across clock changes,
every 90 days from creation, once for all the ticks missed while the operator was down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.engine import schedules

from .support import utc

CREATED = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


def schedule(expression: str, time_zone: str = "UTC") -> schedules.Schedule:
    return schedules.parse_schedule(expression, time_zone, anchor=CREATED)


def ticks_after(expression: str, time_zone: str, start: datetime, count: int) -> list[datetime]:
    parsed, found = schedule(expression, time_zone), []
    for _ in range(count):
        start = parsed.next_after(start)
        found.append(start)
    return found


def test_quarterly_in_berlin_ticks_at_three_local_in_winter_and_summer_time() -> None:
    # 03:00 CET is 02:00 UTC; 03:00 CEST (from 29 March 2026 to 25 October 2026) is 01:00 UTC.
    assert ticks_after("0 3 1 */3 *", "Europe/Berlin", utc(2025, 12, 1), 5) == [
        utc(2026, 1, 1, 2), utc(2026, 4, 1, 1), utc(2026, 7, 1, 1), utc(2026, 10, 1, 1), utc(2027, 1, 1, 2),
    ]


@pytest.mark.parametrize(("expression", "time_zone", "after", "expected"), [
    # Spring forward, 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 never shows.
    ("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12), [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]),
    # The 03:00 tick that day is the same instant as the skipped 02:30 one: one tick, not two.
    ("30 2,3 * * *", "Europe/Berlin", utc(2026, 3, 28, 12),
     [utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]),
    ("*/30 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 29),
     [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30)]),
    # Fall back, 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice, ticks once (CEST).
    ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]),
    ("30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23),
     [utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 30)]),
    # New York springs forward at 02:00 local (07:00 UTC) on 8 March 2026.
    ("15 2 * * *", "America/New_York", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 15)]),
    # Lord Howe Island moves its clock by half an hour: 02:00 (+10:30) -> 02:30 (+11) on 4 October 2026.
    ("10 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 12),
     [utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 10)]),
    # Samoa skipped 30 December 2011 (-10 -> +14 at 10:00 UTC): that day's midnight fires at the jump,
    # which is also the next midnight's instant.
    ("@daily", "Pacific/Apia", utc(2011, 12, 29, 12), [utc(2011, 12, 30, 10), utc(2011, 12, 31, 10)]),
    ("@monthly", "UTC", utc(2026, 1, 31, 23, 59), [utc(2026, 2, 1), utc(2026, 3, 1)]),
    ("@daily", "Asia/Kolkata", utc(2026, 1, 1), [utc(2026, 1, 1, 18, 30), utc(2026, 1, 2, 18, 30)]),
])
def test_cron_ticks_on_clock_change_days_fire_once_each(
    expression: str, time_zone: str, after: datetime, expected: list[datetime]
) -> None:
    assert ticks_after(expression, time_zone, after, len(expected)) == expected


def test_the_next_tick_is_strictly_after_the_instant_even_when_the_instant_is_a_tick() -> None:
    daily = schedule("0 3 * * *")
    assert daily.next_after(utc(2026, 5, 1, 3)) == utc(2026, 5, 2, 3)
    assert daily.next_after(utc(2026, 5, 1, 2, 59, 59, 999999)) == utc(2026, 5, 1, 3)
    assert daily.latest_at_or_before(utc(2026, 5, 1, 3)) == utc(2026, 5, 1, 3)
    assert daily.latest_at_or_before(utc(2026, 5, 1, 2, 59, 59)) == utc(2026, 4, 30, 3)


def test_in_the_repeated_hour_the_latest_tick_is_its_first_occurrence() -> None:
    daily = schedule("30 2 * * *", "Europe/Berlin")
    # 02:10 CET (second pass, 01:10 UTC) comes after the day's only 02:30 tick (02:30 CEST, 00:30 UTC).
    assert daily.latest_at_or_before(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 0, 30)
    assert daily.next_after(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 26, 1, 30)
    assert daily.latest_at_or_before(utc(2026, 10, 25, 0, 29)) == utc(2026, 10, 24, 0, 30)


@pytest.mark.parametrize(("after", "expected"), [
    (CREATED - timedelta(days=400), CREATED + timedelta(days=90)),
    (CREATED, CREATED + timedelta(days=90)),
    (CREATED + timedelta(days=90), CREATED + timedelta(days=180)),
    (CREATED + timedelta(days=200), CREATED + timedelta(days=270)),
])
def test_every_90_days_counts_from_the_anchor(after: datetime, expected: datetime) -> None:
    assert schedule("@every 90d").next_after(after) == expected


def test_every_is_exact_hours_so_its_local_time_moves_with_the_clock() -> None:
    every = schedules.parse_schedule("@every 90d", "Europe/Berlin", anchor=utc(2026, 1, 1, 2))  # 03:00 CET
    tick = every.next_after(utc(2026, 1, 1, 2))
    assert tick == utc(2026, 4, 1, 2)  # 04:00 CEST: 90 x 24 hours later
    assert every.latest_at_or_before(utc(2026, 1, 1, 2)) is None  # the anchor itself is not a tick
    assert schedules.parse_schedule("@every 1h30m", anchor=CREATED).next_after(CREATED) == CREATED + timedelta(
        minutes=90
    )


def test_ticks_missed_while_the_operator_was_down_rotate_once_for_the_latest() -> None:
    quarterly = schedule("0 3 1 */3 *", "Europe/Berlin")
    handled = utc(2026, 1, 1, 2)
    # Down from February to mid-November: the April, July and October ticks were missed.
    assert quarterly.due(handled, utc(2026, 11, 15)) == utc(2026, 10, 1, 1)
    # Once that tick is recorded as handled, nothing more is due until the next one.
    assert quarterly.due(utc(2026, 10, 1, 1), utc(2026, 11, 15)) is None
    assert quarterly.due(utc(2026, 10, 1, 1), utc(2027, 1, 1, 2)) == utc(2027, 1, 1, 2)
    every = schedule("@every 90d")
    assert every.due(CREATED, CREATED + timedelta(days=400)) == CREATED + timedelta(days=360)
    assert every.due(CREATED, CREATED + timedelta(days=89)) is None


def test_a_schedule_created_between_ticks_is_not_due_for_the_tick_before_its_creation() -> None:
    assert schedule("@monthly").due(CREATED, utc(2026, 1, 20)) is None
    assert schedule("@monthly").due(CREATED, utc(2026, 2, 1)) == utc(2026, 2, 1)


@pytest.mark.parametrize(("expression", "time_zone", "field", "reason", "message"), [
    ("61 * * * *", "UTC", "schedule", "InvalidSchedule", "'61 * * * *' is not a valid cron expression"),
    ("0 0 31 2 *", "UTC", "schedule", "InvalidSchedule", "'0 0 31 2 *' never fires"),
    ("* * * *", "UTC", "schedule", "InvalidSchedule", "does not have the five cron fields"),
    ("0 0 * * * *", "UTC", "schedule", "InvalidSchedule", "does not have the five cron fields"),
    ("@reboot", "UTC", "schedule", "InvalidSchedule", "'@reboot' is not a cron shorthand"),
    ("@every 0s", "UTC", "schedule", "InvalidSchedule", "the interval must be longer than zero"),
    ("@every 90 days", "UTC", "schedule", "InvalidSchedule", "is not a cron shorthand"),
    ("@every 3w", "UTC", "schedule", "InvalidSchedule", "@every needs a duration: '3w' is not a duration"),
    ("@daily", "Mars/Olympus_Mons", "timeZone", "InvalidTimeZone", "'Mars/Olympus_Mons' is not an IANA time zone"),
    ("@daily", "../../etc/passwd", "timeZone", "InvalidTimeZone", "is not an IANA time zone"),
    ("@daily", "", "timeZone", "InvalidTimeZone", "is not an IANA time zone"),
])
def test_a_bad_schedule_or_time_zone_is_refused_with_its_field_and_reason(
    expression: str, time_zone: str, field: str, reason: str, message: str
) -> None:
    with pytest.raises(schedules.ScheduleError) as refused:
        schedule(expression, time_zone)
    assert (refused.value.field, refused.value.reason) == (field, reason)
    assert message in refused.value.message
    assert str(refused.value) == f"{field}: {refused.value.message}"


EXPRESSIONS = ["0 3 1 */3 *", "30 2 * * *", "*/7 * * * *", "0 0 29 2 *", "15 1-3 * * 0", "@hourly", "@weekly",
               "@every 90d", "@every 12h", "@every 1h17m"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Kathmandu"]
INSTANTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(EXPRESSIONS), st.sampled_from(ZONES), INSTANTS, INSTANTS)
def test_ticks_are_ordered_and_the_due_tick_lies_between_the_last_handled_and_now(
    expression: str, time_zone: str, first: datetime, second: datetime
) -> None:
    parsed = schedules.parse_schedule(expression, time_zone, anchor=utc(2019, 6, 1, 12, 34, 56))
    since, now = min(first, second), max(first, second)
    following = parsed.next_after(now)
    latest = parsed.latest_at_or_before(now)
    assert following > now
    assert latest is not None and latest <= now
    # No tick lies between the latest and the next: both searches agree.
    assert parsed.next_after(latest) == following
    due = parsed.due(since, now)
    assert due is None or since < due <= now
    assert (due is None) == (parsed.next_after(since) > now)
