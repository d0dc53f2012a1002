"""What the leader's Incident handling adds to the metrics: open Incidents by phase, new Incidents, step
durations, time to first action and to mitigation, and the Incidents the rate limit holds back.

Fed from what the handlers already have: every body the watch delivers (phases, new Incidents) and
every status the operator writes (the transitions it made). Each transition is written once, by a
conditional write, so it is observed once; one the operator crashed before observing is lost to the
metrics (never to the status).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from remediator.api.steps import STEP_KINDS, StepState
from remediator.metrics import OperatorMetrics

# Phases that need nothing more from the operator or from a person.
CLOSED_PHASES = frozenset({"Resolved", "Planned"})
FINISHED_STEP_STATES = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED})
# A step's kind as its spec key reads (httpCheck, not http_check).
STEP_KIND_KEYS = tuple("".join([w if i == 0 else w.title() for i, w in enumerate(k.split("_"))]) for k in STEP_KINDS)


def _time(text: object) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds(start: object, end: object) -> float | None:
    started, ended = _time(start), _time(end)
    return None if started is None or ended is None else max((ended - started).total_seconds(), 0.0)


def step_kind(step: Mapping[str, Any]) -> str:
    """The kind of a spec step (`rollback`, `httpCheck`, ...), or "unknown"."""
    return next((key for key in STEP_KIND_KEYS if key in step), "unknown")


class IncidentFigures:
    """The leader's running figures; `started_at`: Incidents created before it are not counted as new."""

    def __init__(self, metrics: OperatorMetrics, started_at: datetime.datetime) -> None:
        self.metrics = metrics
        # creationTimestamp has whole seconds: one created in the second this replica started is new.
        self.started_at = started_at.replace(microsecond=0)
        self._phases: dict[str, str] = {}  # uid -> phase, of every Incident not yet closed
        self._known: set[str] = set()
        self._rate_limited: set[str] = set()

    def seen(self, body: Mapping[str, Any]) -> None:
        """Take a body from the watch: its phase, and whether it is a new Incident."""
        meta = body["metadata"]
        uid = meta["uid"]
        if uid not in self._known:
            self._known.add(uid)
            created = _time(meta.get("creationTimestamp"))
            if created is not None and created >= self.started_at:
                labels = meta.get("labels") or {}
                spec = body.get("spec") or {}
                runbook = labels.get("remediator.dev/runbook") or (spec.get("runbookRef") or {}).get("name") or ""
                self.metrics.incidents_observed.labels(runbook, str(spec.get("severity") or "")).inc()
        phase = str((body.get("status") or {}).get("phase") or "Pending")
        self._move(uid, None if phase in CLOSED_PHASES else phase)

    def gone(self, uid: str) -> None:
        """The Incident was deleted."""
        self._move(uid, None)
        self._known.discard(uid)
        self.rate_limited(uid, False)

    def wrote(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Observe what one status write changed: finished steps, the first action, mitigation."""
        old, new = before.get("status") or {}, after.get("status") or {}
        created = after["metadata"].get("creationTimestamp")
        kinds = {step.get("name"): step_kind(step) for step in (after.get("spec") or {}).get("steps") or []}
        finished_before = {s.get("name") for s in old.get("steps") or [] if s.get("state") in FINISHED_STEP_STATES}
        for step in new.get("steps") or []:
            if step.get("state") in FINISHED_STEP_STATES and step.get("name") not in finished_before:
                took = _seconds(step.get("startedAt"), step.get("finishedAt"))
                if took is not None:
                    self.metrics.step_duration.labels(kinds.get(step.get("name"), "unknown"),
                                                      step["state"]).observe(took)
        if not any(s.get("startedAt") for s in old.get("steps") or []):
            starts = sorted(s["startedAt"] for s in new.get("steps") or [] if s.get("startedAt"))
            first = _seconds(created, starts[0]) if starts else None
            if first is not None:
                self.metrics.time_to_first_action.observe(first)
        if not old.get("mitigatedAt") and new.get("mitigatedAt"):
            mitigated = _seconds(created, new["mitigatedAt"])
            if mitigated is not None:
                self.metrics.time_to_mitigate.observe(mitigated)

    def rate_limited(self, uid: str, waiting: bool) -> None:
        """Whether the Incident's next step waits for the operator-wide rate limit now."""
        if waiting:
            self._rate_limited.add(uid)
        else:
            self._rate_limited.discard(uid)
        self.metrics.rate_limit_queued.set(len(self._rate_limited))

    def holding(self) -> set[str]:
        """The uids of the Incidents the figures keep anything for: none once deleted."""
        return set(self._phases) | self._known | self._rate_limited

    def _move(self, uid: str, phase: str | None) -> None:
        previous = self._phases.pop(uid, None)
        if previous == phase:
            if phase is not None:
                self._phases[uid] = phase
            return
        if previous is not None:
            self.metrics.incidents_open.labels(previous).dec()
        if phase is not None:
            self._phases[uid] = phase
            self.metrics.incidents_open.labels(phase).inc()
