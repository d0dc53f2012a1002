"""The engine's test harness: an in-memory cluster answering intents, and a reconciliation loop."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from remediator.engine import guards, incidents, intents

T0 = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.UTC)
WEB = {"kind": "Deployment", "name": "web"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime.datetime:
    """An instant written as its UTC reading."""
    return datetime.datetime(year, month, day, hour, minute, second, microsecond, tzinfo=datetime.UTC)


class Cluster:
    """Answers intents like the I/O layer would, against in-memory workloads."""

    def __init__(self, replicas: int = 2, annotations: dict[str, str] | None = None) -> None:
        self.replicas = replicas
        self.annotations = dict(annotations or {})
        self.generation = 1
        self.acted: list[intents.Intent] = []
        self.http: list[int] = []
        self.fail_scale: list[str] = []
        self.lost_answers = 0  # actions that take effect but whose answer is lost (a dropped connection)
        self.restarted_at: str | None = None
        self.rolling = False  # a rollout under way: no replica is updated yet
        self.database_report: dict[str, Any] = {}  # what a database step's operation reports
        self.sessions: list[dict[str, Any]] = []  # the sessions a session-ending operation finds ({pid, backendStart})
        self.terminated: list[int] = []
        self.fail_database: list[str] = []
        self.incidents: dict[str, dict[str, Any]] = {}  # "namespace/name" → Incident object, for lock holders
        self.runbooks: dict[str, dict[str, Any]] = {}  # name → Runbook object

    def workload(self) -> dict[str, Any]:
        return {"kind": "Deployment", "metadata": {"name": "web", "annotations": dict(self.annotations),
                                                   "generation": self.generation},
                "spec": {"replicas": self.replicas, "template": {"metadata": {"annotations": {
                    intents.RESTARTED_AT_ANNOTATION: self.restarted_at} if self.restarted_at else {}}}},
                "status": {"observedGeneration": self.generation, "replicas": self.replicas,
                           "updatedReplicas": 0 if self.rolling else self.replicas, "availableReplicas": self.replicas}}

    def answer(self, intent: intents.Intent) -> intents.Result:
        if not intents.is_observation(intent):
            self.acted.append(intent)
        if isinstance(intent, intents.ObserveTarget):
            return intents.done(self.workload())
        if isinstance(intent, intents.ClaimTarget):
            self.annotations[guards.LOCK_ANNOTATION] = intent.holder
            self.annotations[guards.cooldown_annotation(intent.cooldown_action)] = guards.format_cooldown(
                intent.cooldown_until, intent.holder)
            return intents.done(self.workload())
        if isinstance(intent, intents.ObserveRunbook):
            return intents.done(self.runbooks.get(intent.name))
        if isinstance(intent, intents.ObserveHolder):
            return intents.done(self.incidents.get(f"{intent.namespace}/{intent.name}"))
        if isinstance(intent, intents.ReleaseTargets):
            self.annotations.pop(guards.LOCK_ANNOTATION, None)
            return intents.done()
        if isinstance(intent, intents.ScaleTo):
            if self.fail_scale:
                return intents.failed(self.fail_scale.pop(0), "the API said no")
            self.replicas = intent.replicas
            return self._answer()
        if isinstance(intent, intents.RolloutRestart):
            if intent.restarted_at != self.restarted_at:
                self.generation += 1  # a new rollout
            self.restarted_at = intent.restarted_at
            return self._answer()
        if isinstance(intent, intents.EnsureRollbackRequest):
            return intents.done()
        if isinstance(intent, intents.ObserveRollbackRequest):
            return intents.done({"status": {"phase": "Complete", "fromRevision": 2, "toRevision": 1}})
        if isinstance(intent, intents.RunDatabaseOperation):
            if not self.sessions:
                return intents.done(self.database_report)
            found = [s for s in self.sessions if s["pid"] not in self.terminated]
            if intent.dry_run:
                return intents.done({"dryRun": True, "targets": found})
            if self.fail_database:
                return intents.failed(self.fail_database.pop(0), "the connection broke")
            chosen = [s for s in found if intent.only is None or (s["pid"], s["backendStart"]) in intent.only]
            self.terminated += [s["pid"] for s in chosen]
            return intents.done({"dryRun": False, "targets": chosen})
        if isinstance(intent, intents.ProbeHttp):
            return intents.done({"status": self.http.pop(0) if self.http else 200, "body": "ok"})
        raise AssertionError(f"unexpected intent {intent!r}")

    def _answer(self) -> intents.Result:
        if self.lost_answers:
            self.lost_answers -= 1
            return intents.failed("ApiError", "the connection dropped before the answer")
        return intents.done()


def incident(*steps: dict[str, Any], annotations: dict[str, str] | None = None, **spec: Any) -> incidents.Incident:
    return incidents.Incident(uid="uid-1", name="inc", namespace="shop", generation=1, created_at=T0,
                              spec={"severity": "P1", "summary": "web is down", "steps": list(steps), **spec},
                              status={}, annotations=annotations or {})


def run(obj: incidents.Incident, cluster: Cluster, now: datetime.datetime = T0,
        policy: incidents.Policy | None = None, rate_limit: guards.Verdict = guards.PROCEED,
        tick: datetime.timedelta = datetime.timedelta(),
        ) -> tuple[incidents.Incident, incidents.Decision]:
    """One reconciliation: decide and answer intents until the engine waits or is done.

    As the handler does, the results gathered are forgotten afterwards: only the status persists.
    `tick`: how long each answer takes (the clock moves on by that much per intent).
    """
    results: dict[intents.Intent, intents.Result] = {}
    for _ in range(100):
        decision = incidents.decide(obj, incidents.World(results=dict(results), rate_limit=rate_limit), now,
                                    policy or incidents.Policy())
        obj = dataclasses.replace(obj, status=decision.status.model_dump(by_alias=True, mode="json",
                                                                          exclude_none=True))
        if decision.intent is None:
            return obj, decision
        result = cluster.answer(decision.intent)
        now += tick
        if isinstance(decision.intent, intents.ClaimTarget):
            # As the handler does: the claim answers with the workload as it left it.
            results[intents.ObserveTarget(decision.intent.step, decision.intent.kind, decision.intent.name)] = result
            continue
        results[decision.intent] = result
    raise AssertionError("no conclusion")


def step_state(obj: incidents.Incident, name: str) -> dict[str, Any]:
    return next(s for s in obj.status["steps"] if s["name"] == name)


def condition(obj: incidents.Incident, condition_type: str) -> tuple[str, str] | None:
    found = [c for c in obj.status.get("conditions", []) if c["type"] == condition_type]
    return (found[0]["status"], found[0]["reason"]) if found else None


RESOLVED = {"type": "Resolved", "status": "True", "reason": "StepsSucceeded",
            "lastTransitionTime": "2026-11-22T02:00:00Z"}
