"""The receiver's Prometheus metrics, served on GET /metrics beside POST /alertmanager.

Each receiver has its own registry (tests run several in one process); the names are the contract a
dashboard reads.
"""

from __future__ import annotations

import prometheus_client as prom


class ReceiverMetrics:
    """Alerts received, matched, deduplicated and rejected; Incidents created; request latency."""

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        self.alerts_received = prom.Counter(
            "remediator_alerts_received", "Alerts in valid notifications", registry=self.registry)
        self.alerts_matched = prom.Counter(
            "remediator_alerts_matched", "Alerts a Runbook's trigger matched", registry=self.registry)
        self.alerts_unmatched = prom.Counter(
            "remediator_alerts_unmatched", "Alerts no Runbook matched", registry=self.registry)
        self.alerts_deduplicated = prom.Counter(
            "remediator_alerts_deduplicated", "Matched alerts that joined an Incident that already existed",
            registry=self.registry)
        self.alerts_rejected = prom.Counter(
            "remediator_alerts_rejected", "Matched alerts that made no Incident, by reason", ["reason"],
            registry=self.registry)
        self.incidents_created = prom.Counter(
            "remediator_incidents_created", "Incidents the receiver created, by Runbook and severity",
            ["runbook", "severity"], registry=self.registry)
        self.requests = prom.Histogram(
            "remediator_receiver_request_duration_seconds", "Webhook requests by answer code, and their latency",
            ["code"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return prom.generate_latest(self.registry)
