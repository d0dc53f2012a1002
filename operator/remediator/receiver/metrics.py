"""The receiver's Prometheus metrics: alerts received, matched, deduplicated and rejected, Incidents created,
request latency, and the loop guard's holds.

They live in the operator-wide registry (remediator/metrics.py) when the operator runs; a receiver made on
its own (tests run several in one process) gets a registry of its own. The names are the contract a
dashboard reads.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

import prometheus_client as prom

from remediator.receiver import loop_guards, plans


class ReceiverMetrics:
    """Alerts received, matched, deduplicated and rejected; Incidents created; request latency; loop guard."""

    def __init__(self, registry: prom.CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = prom.CollectorRegistry() if registry is None else registry
        self.clock = clock
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
        self.loop_guard_holds = prom.Counter(
            "remediator_loop_guard_holds", "Incidents created held by the loop guard (every step waits for "
            "approval), by reason", ["reason"], registry=self.registry)
        # Series exist from the start, at 0, so a rate over them, or a rule, reads 0 rather than nothing.
        for reason in plans.REJECTION_REASONS:
            self.alerts_rejected.labels(reason)
        for reason in (loop_guards.REMEDIATION_LOOP, loop_guards.CONSECUTIVE_FAILURES):
            self.loop_guard_holds.labels(reason)
        self._at_limit: dict[str, float] = {}  # incident key -> when its hold's window ends (monotonic)
        prom.Gauge("remediator_loop_guard_targets_at_limit", "Incident keys (targets) whose last Incident this "
                   "replica created was held by the loop guard, within the guard's window",
                   registry=self.registry).set_function(self._targets_at_limit)

    def held(self, key: str, reason: str, window: datetime.timedelta) -> None:
        """Count a hold on a new Incident of this key; the key stays at its limit for the guard's window."""
        self.loop_guard_holds.labels(reason).inc()
        self._at_limit[key] = self.clock() + window.total_seconds()

    def _targets_at_limit(self) -> float:
        now = self.clock()
        for key in [key for key, until in self._at_limit.items() if until <= now]:
            del self._at_limit[key]
        return float(len(self._at_limit))

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format (the whole registry: the operator's too when shared)."""
        return prom.generate_latest(self.registry)
