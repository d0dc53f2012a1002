"""The leader's Incident figures, from the bodies its watch delivers and the statuses it writes."""

from __future__ import annotations

import datetime
from typing import Any

from remediator.handlers.incident_figures import IncidentFigures
from remediator.metrics import OperatorMetrics

STARTED = datetime.datetime(2026, 11, 30, 1, 0, tzinfo=datetime.UTC)


def incident(uid: str, created: str, phase: str | None = None, **status: Any) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": uid, "namespace": "default", "creationTimestamp": created,
                         "labels": {"remediator.dev/runbook": "crash-looping"}},
            "spec": {"severity": "P1", "steps": [{"name": "undo", "rollback": {}}, {"name": "check", "httpCheck": {}}]},
            "status": {**({"phase": phase} if phase else {}), **status}}


def sample(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_new_leader_counts_only_incidents_created_while_it_leads_and_shows_the_open_ones_by_phase() -> None:
    metrics = OperatorMetrics()
    figures = IncidentFigures(metrics, STARTED)
    figures.seen(incident("old", "2026-11-30T00:59:00Z", "Remediating"))  # listed after a failover
    figures.seen(incident("new", "2026-11-30T01:00:05Z"))
    figures.seen(incident("new", "2026-11-30T01:00:05Z", "Remediating"))  # the same one again
    assert sample(metrics, "remediator_incidents_observed_total", runbook="crash-looping", severity="P1") == 1
    assert sample(metrics, "remediator_incidents_open", phase="Remediating") == 2
    assert sample(metrics, "remediator_incidents_open", phase="Pending") == 0
    figures.seen(incident("new", "2026-11-30T01:00:05Z", "Resolved"))
    figures.gone("old")
    assert sample(metrics, "remediator_incidents_open", phase="Remediating") == 0


def test_an_incident_created_in_the_second_the_leader_started_is_counted() -> None:
    """creationTimestamp has whole seconds: one created 0.3 s after a start at 01:00:00.7 reads 01:00:01,
    one created 0.2 s after it reads 01:00:00, and both are new."""
    metrics = OperatorMetrics()
    figures = IncidentFigures(metrics, STARTED.replace(microsecond=700_000))
    figures.seen(incident("same-second", "2026-11-30T01:00:00Z"))
    figures.seen(incident("next-second", "2026-11-30T01:00:01Z"))
    figures.seen(incident("before", "2026-11-30T00:59:59Z"))
    assert sample(metrics, "remediator_incidents_observed_total", runbook="crash-looping", severity="P1") == 2


def test_a_status_write_observes_each_finished_step_the_first_action_and_mitigation_once() -> None:
    metrics = OperatorMetrics()
    figures = IncidentFigures(metrics, STARTED)
    created = "2026-11-30T01:00:00Z"
    pending = incident("i", created)
    started = incident("i", created, steps=[{"name": "undo", "state": "Running", "startedAt": "2026-11-30T01:00:01Z"}])
    undone = incident("i", created, mitigatedAt="2026-11-30T01:00:04Z", steps=[
        {"name": "undo", "state": "Succeeded", "startedAt": "2026-11-30T01:00:01Z",
         "finishedAt": "2026-11-30T01:00:04Z"},
        {"name": "check", "state": "Running", "startedAt": "2026-11-30T01:00:04Z"}])
    figures.wrote(pending, started)
    figures.wrote(started, undone)
    figures.wrote(undone, undone)  # a write that changed something else
    assert sample(metrics, "remediator_time_to_first_action_seconds_count") == 1
    assert sample(metrics, "remediator_time_to_first_action_seconds_sum") == 1.0
    assert sample(metrics, "remediator_step_duration_seconds_count", kind="rollback", result="Succeeded") == 1
    assert sample(metrics, "remediator_step_duration_seconds_sum", kind="rollback", result="Succeeded") == 3.0
    assert sample(metrics, "remediator_time_to_mitigate_seconds_sum") == 4.0
    assert sample(metrics, "remediator_time_to_mitigate_seconds_count") == 1
