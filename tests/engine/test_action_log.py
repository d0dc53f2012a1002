"""The operator-wide memory of recent actions that the rate limit judges by."""

from __future__ import annotations

import datetime

import pytest

from remediator.engine import guards

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
LIMIT = guards.RateLimit(actions=3, per=datetime.timedelta(minutes=1))


def ago(seconds: float) -> datetime.datetime:
    return NOW - datetime.timedelta(seconds=seconds)


def test_actions_within_the_window_hold_the_next_back_until_the_oldest_leaves_it() -> None:
    log = guards.ActionLog()
    for seconds in (90, 50, 20, 10.5):
        log.record(ago(seconds))
    verdict = log.verdict(LIMIT, NOW)
    assert (verdict.reason, verdict.retry_at) == ("RateLimited", NOW + datetime.timedelta(seconds=10))
    assert log.remaining(LIMIT, NOW) == 0
    assert log.verdict(LIMIT, NOW + datetime.timedelta(seconds=10)).proceeds
    assert log.remaining(LIMIT, NOW + datetime.timedelta(seconds=10)) == 1
    assert log.verdict(None, NOW).proceeds and log.remaining(None, NOW) == float("inf")


def test_an_action_keeps_its_microseconds_and_its_time_zone() -> None:
    log = guards.ActionLog()
    moment = ago(59.999999)
    log.record(moment)
    verdict = log.verdict(guards.RateLimit(actions=1), NOW)
    assert verdict.retry_at == moment + datetime.timedelta(minutes=1)
    assert verdict.retry_at is not None and verdict.retry_at.utcoffset() == datetime.timedelta(0)


def test_only_the_last_kept_actions_count_however_many_were_recorded() -> None:
    log = guards.ActionLog(keep=10)
    times = [ago(30 - i * 0.001) for i in range(1_002)]  # trimmed now and then: more than 10 may be stored
    for moment in times:
        log.record(moment)
    verdict = log.verdict(guards.RateLimit(actions=10), NOW)
    assert verdict.retry_at == times[-10] + datetime.timedelta(minutes=1)  # the 10th most recent leaves first
    assert log.remaining(guards.RateLimit(actions=10), NOW) == 0


def test_a_log_that_would_keep_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="keep must be at least 1, not 0"):
        guards.ActionLog(keep=0)


def test_a_limit_of_more_actions_than_the_log_keeps_still_trips() -> None:
    """`--rate-limit 20000` with a log that kept 10,000 would never have held anything back."""
    log = guards.ActionLog(keep=10)
    limit = guards.RateLimit(actions=25)
    for i in range(25):
        assert log.verdict(limit, ago(30 - i)).proceeds, f"held back at action {i + 1}"
        log.record(ago(30 - i))
    verdict = log.verdict(limit, NOW)
    assert (verdict.reason, verdict.retry_at) == ("RateLimited", ago(30) + datetime.timedelta(minutes=1))
    assert log.remaining(limit, NOW) == 0
