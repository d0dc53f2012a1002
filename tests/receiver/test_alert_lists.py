"""An open Incident records the alerts of its episode: resends add nothing, a resolve is noted, and the
list stays bounded with a folded count."""

from __future__ import annotations

import datetime
from typing import Any

from remediator.api.incidents import MAX_ALERTS, AlertRecord, AlertState
from remediator.receiver import alert_lists

NOW = datetime.datetime(2026, 11, 29, 12, tzinfo=datetime.UTC)
START = datetime.datetime(2026, 11, 29, 10, tzinfo=datetime.UTC)


def record(fingerprint: str, state: AlertState = AlertState.FIRING, minute: int = 0) -> AlertRecord:
    return AlertRecord(fingerprint=fingerprint, starts_at=START + datetime.timedelta(minutes=minute), status=state)


def merge(status: dict[str, Any], alerts: list[AlertRecord], truncated: int = 0) -> dict[str, Any] | None:
    merged = alert_lists.merge(status, alerts, truncated, NOW)
    return None if merged is None else merged.status


def test_a_new_alert_is_recorded_once_and_a_resend_changes_nothing() -> None:
    status = merge({}, [record("a")])
    assert status is not None
    assert [a["fingerprint"] for a in status["alerts"]] == ["a"]
    assert [e["reason"] for e in status["timeline"]] == ["AlertReceived"]
    assert merge(status, [record("a")]) is None


def test_a_storm_of_alerts_adds_one_entry_per_write_naming_the_first_few() -> None:
    """100 alerts in one notification: one AlertReceived (posted as one Event), not 100 entries folding the
    operator's own out of the bounded timeline; their resolve, one AlertChanged and the AlertResolved."""
    merged = alert_lists.merge({}, [record(f"p{i:03d}") for i in range(100)], 0, NOW)
    assert merged is not None
    [entry] = merged.entries
    assert (entry.reason, merged.status["timeline"][0]["reason"]) == ("AlertReceived", "AlertReceived")
    assert entry.message.startswith("100 alerts received: alert p000 firing, started 2026-11-29T10:00:00+00:00; "
                                    "alert p001 firing")
    assert entry.message.endswith("; and 95 more")
    resolved = alert_lists.merge(merged.status, [record(f"p{i:03d}", AlertState.RESOLVED) for i in range(100)], 0,
                                 NOW)
    assert resolved is not None
    assert [e.reason for e in resolved.entries] == ["AlertChanged", "AlertResolved"]
    assert resolved.entries[0].message.startswith("100 alerts changed: alert p000 is resolved;")
    assert len(resolved.status["timeline"]) == 3


def test_when_every_alert_is_resolved_the_incident_says_so() -> None:
    status = merge({}, [record("a"), record("b")])
    assert status is not None
    status = merge(status, [record("a", AlertState.RESOLVED)])
    assert status is not None
    assert not any(c["type"] == "AlertResolved" for c in status.get("conditions", []))
    status = merge(status, [record("b", AlertState.RESOLVED)])
    assert status is not None
    [condition] = [c for c in status["conditions"] if c["type"] == "AlertResolved"]
    assert condition["status"] == "True"
    again = merge(status, [record("c")])
    assert again is not None
    assert [c["status"] for c in again["conditions"] if c["type"] == "AlertResolved"] == ["False"]


def test_an_alert_storm_is_bounded_and_counted() -> None:
    status = merge({}, [record(f"r{i}", AlertState.RESOLVED, i) for i in range(10)], 7)
    assert status is not None
    status = merge(status, [record(f"f{i}", minute=i) for i in range(MAX_ALERTS)], 3)
    assert status is not None
    assert len(status["alerts"]) == MAX_ALERTS
    assert status["alertsFolded"] == 10
    assert all(a["status"] == "firing" for a in status["alerts"])  # resolved ones are folded first
    assert status["truncatedAlerts"] == 7


def test_what_the_operator_owns_is_left_as_it_was() -> None:
    status = merge({"observedGeneration": 1, "runbookSteps": []}, [record("a")])
    assert status is not None
    assert status["observedGeneration"] == 1
