"""An Incident's place in the line for a reconcile slot comes from its severity, however it is spelled."""

from __future__ import annotations

from remediator.handlers import incident_queue, incidents


def test_the_most_severe_come_first_and_an_invalid_severity_last() -> None:
    def priority(severity: object) -> int:
        return incidents._priority({"spec": {"severity": severity}})

    assert priority("P0") == priority("SEV1") == 0
    assert priority("P0") < priority("P1") < priority("SEV3") == priority("P2") < priority("P3")
    assert priority("P9") == priority(None) == priority(3) == incident_queue.LAST
    assert incidents._priority({}) == incident_queue.LAST
