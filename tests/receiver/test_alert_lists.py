"""An open Incident records the alerts of its episode: resends add nothing, a resolve is noted, and the
list stays bounded with a folded count."""

from __future__ import annotations

import datetime

from remediator.api.incidents import MAX_ALERTS, AlertRecord, AlertState
from remediator.receiver import alert_lists

NOW = datetime.datetime(2026, 11, 29, 12, tzinfo=datetime.UTC)
START = datetime.datetime(2026, 11, 29, 10, tzinfo=datetime.UTC)


def record(fingerprint: str, state: AlertState = AlertState.FIRING, minute: int = 0) -> AlertRecord:
    return AlertRecord(fingerprint=fingerprint, starts_at=START + datetime.timedelta(minutes=minute), status=state)


def test_a_new_alert_is_recorded_once_and_a_resend_changes_nothing() -> None:
    status = alert_lists.merge({}, [record("a")], 0, NOW)
    assert status is not None
    assert [a["fingerprint"] for a in status["alerts"]] == ["a"]
    assert [e["reason"] for e in status["timeline"]] == ["AlertReceived"]
    assert alert_lists.merge(status, [record("a")], 0, NOW) is None


def test_when_every_alert_is_resolved_the_incident_says_so() -> None:
    status = alert_lists.merge({}, [record("a"), record("b")], 0, NOW)
    assert status is not None
    status = alert_lists.merge(status, [record("a", AlertState.RESOLVED)], 0, NOW)
    assert status is not None
    assert not any(c["type"] == "AlertResolved" for c in status.get("conditions", []))
    status = alert_lists.merge(status, [record("b", AlertState.RESOLVED)], 0, NOW)
    assert status is not None
    [condition] = [c for c in status["conditions"] if c["type"] == "AlertResolved"]
    assert condition["status"] == "True"
    again = alert_lists.merge(status, [record("c")], 0, NOW)
    assert again is not None
    assert [c["status"] for c in again["conditions"] if c["type"] == "AlertResolved"] == ["False"]


def test_an_alert_storm_is_bounded_and_counted() -> None:
    status = alert_lists.merge({}, [record(f"r{i}", AlertState.RESOLVED, i) for i in range(10)], 7, NOW)
    assert status is not None
    status = alert_lists.merge(status, [record(f"f{i}", minute=i) for i in range(MAX_ALERTS)], 3, NOW)
    assert status is not None
    assert len(status["alerts"]) == MAX_ALERTS
    assert status["alertsFolded"] == 10
    assert all(a["status"] == "firing" for a in status["alerts"])  # resolved ones are folded first
    assert status["truncatedAlerts"] == 7


def test_what_the_operator_owns_is_left_as_it_was() -> None:
    status = alert_lists.merge({"observedGeneration": 1, "runbookSteps": []}, [record("a")], 0, NOW)
    assert status is not None
    assert status["observedGeneration"] == 1
