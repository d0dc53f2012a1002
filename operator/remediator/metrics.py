"""The operator-wide Prometheus registry, served on GET /metrics by every replica (health.py).

The names are the contract the chart's Grafana dashboard and PrometheusRule read (a test scrapes a
running operator and checks every name they use). Incident figures are counted by the leader, which
runs the handlers; a follower exports them at zero (or without series), so dashboards sum them over
replicas. The receiver's metrics (every replica) join the same registry.
"""

from __future__ import annotations

import prometheus_client as prom

from remediator.receiver import metrics as receiver_metrics

# Seconds: from a rollout wait or a health check (minutes) to a status patch (milliseconds).
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# Seconds from an Incident's creation: the target is 50 ms to the first action.
RESPONSE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class OperatorMetrics:
    """Every metric of one operator process, in one registry."""

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        self.receiver = receiver_metrics.ReceiverMetrics(self.registry)
        self.leader = prom.Gauge(
            "remediator_leader", "1 while this replica leads (acts on Incidents, RollbackRequests, KeyRotations), "
            "else 0", registry=self.registry)
        self.incidents_observed = prom.Counter(
            "remediator_incidents_observed", "Incidents the leader saw created while it led (any source: kubectl, "
            "GitOps, the receiver), by Runbook and severity", ["runbook", "severity"], registry=self.registry)
        self.incidents_open = prom.Gauge(
            "remediator_incidents_open", "Incidents not yet Resolved, by phase (the leader's view)", ["phase"],
            registry=self.registry)
        self.step_duration = prom.Histogram(
            "remediator_step_duration_seconds", "Steps from their start to their end, by kind and result",
            ["kind", "result"], buckets=STEP_BUCKETS, registry=self.registry)
        self.time_to_first_action = prom.Histogram(
            "remediator_time_to_first_action_seconds", "From an Incident's creation to its first step's start",
            buckets=RESPONSE_BUCKETS, registry=self.registry)
        self.time_to_mitigate = prom.Histogram(
            "remediator_time_to_mitigate_seconds", "From an Incident's creation to its Mitigated condition",
            buckets=RESPONSE_BUCKETS, registry=self.registry)
        self.rate_limit_tokens = prom.Gauge(
            "remediator_rate_limit_tokens", "Actions the operator-wide rate limit (--rate-limit) still allows in "
            "its window (+Inf without a limit)", registry=self.registry)
        self.rate_limit_tokens.set(float("inf"))
        self.rate_limit_queued = prom.Gauge(
            "remediator_rate_limit_queued", "Incidents whose next step waits for the rate limit",
            registry=self.registry)
        self.watch_up = prom.Gauge(
            "remediator_watch_up", "1 while the leader's watch of the Kubernetes API is connected, else 0 "
            "(followers: 1)", registry=self.registry)
        self.watch_up.set(1)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return prom.generate_latest(self.registry)
