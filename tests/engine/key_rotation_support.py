"""A pure stand-in for the cluster around a KeyRotation: it answers the engine's reads and records its actions,
so a test drives `stages.decide` through whole rotations with an injected clock."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from remediator.api.keyrotations import ROTATE_ANNOTATION
from remediator.engine import guards, intents, role_rotations
from remediator.engine.key_rotations import moves, stages, views

T0 = datetime.datetime(2026, 11, 30, 3, 0, tzinfo=datetime.UTC)
SECRET = "payments-api"


def workload(name: str, reads: str | None = SECRET, kind: str = "Deployment") -> dict[str, Any]:
    env = [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": reads, "key": "apiKey"}}}] if reads else []
    return {"kind": kind, "metadata": {"name": name, "generation": 1, "annotations": {}},
            "spec": {"replicas": 1, "template": {"metadata": {}, "spec": {"containers": [{"name": "a", "env": env}]}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}


@dataclasses.dataclass
class Cluster:
    """What exists, and what the engine did to it."""

    secrets: dict[str, set[str]] = dataclasses.field(default_factory=lambda: {SECRET: {"apiKey"}})
    workloads: list[dict[str, Any]] = dataclasses.field(default_factory=lambda: [workload("payments")])
    others: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    health: list[int] = dataclasses.field(default_factory=list)  # answers of the verify checks, then 200s
    actions: list[moves.Action] = dataclasses.field(default_factory=list)
    promoted: dict[str, str] = dataclasses.field(default_factory=dict)  # the live Secret's annotations
    # Secrets' own annotations, types and immutability, by name (Opaque and mutable when absent).
    annotations: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    types: dict[str, str] = dataclasses.field(default_factory=dict)
    immutable: set[str] = dataclasses.field(default_factory=set)
    # Answers of the staged SetRolePassword actions (the set-and-prove of a rotation), then done.
    set_password_failures: list[intents.Result] = dataclasses.field(default_factory=list)
    role: role_rotations.LoginUser = dataclasses.field(
        default_factory=lambda: role_rotations.LoginUser("orders", exists=True))

    def answer(self, intent: moves.Intent, now: datetime.datetime) -> intents.Result:
        match intent:
            case moves.ReadSecrets(names=names):
                return intents.done({name: moves.SecretSeen(
                    name, f"rv-{len(self.actions)}", frozenset(self.secrets[name]),
                    tuple(sorted({**self.annotations.get(name, {}), **self.promoted}.items())),
                    self.types.get(name, "Opaque"), name in self.immutable)
                    if name in self.secrets else None for name in names})
            case moves.ListKeyRotations():
                return intents.done(self.others)
            case moves.ListWorkloads():
                return intents.done(self.workloads)
            case moves.ObserveRole(role=role):
                alternate = role_rotations.LoginUser(role + "_b", exists=any(
                    isinstance(a, moves.EnsureAlternateUser) for a in self.actions), member_of_role=True)
                return intents.done(role_rotations.RoleFacts(self.role, alternate, "orders"))
            case intents.ProbeHttp():
                return intents.done({"status": self.health.pop(0) if self.health else 200, "body": ""})
        self.actions.append(intent)
        if isinstance(intent, intents.RolloutRestart):
            for found in self.workloads:
                if found["metadata"]["name"] == intent.name:
                    found["spec"]["template"]["metadata"]["annotations"] = {
                        intents.PRECISE_RESTART_ANNOTATION: intent.restarted_at}
        if isinstance(intent, moves.SetRolePassword) and intent.mark is not None and self.set_password_failures:
            return self.set_password_failures.pop(0)
        if isinstance(intent, moves.RevokeRoleUser):
            return intents.done({"user": intent.user, "openSessions": 2, "terminatedSessions": 0})
        if isinstance(intent, moves.PromoteSecret):
            self.promoted = {moves.ROTATION_ID_ANNOTATION: intent.rotation_id}
        return intents.done()


@dataclasses.dataclass
class Driver:
    """A KeyRotation's object as the API server would hold it, reconciled the way the handler does."""

    cluster: Cluster
    spec: dict[str, Any]
    name: str = "payments-keys"
    created_at: str = "2026-11-01T00:00:00Z"
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    policy: views.Policy = dataclasses.field(default_factory=lambda: views.Policy(
        restart_coalesce=datetime.timedelta(seconds=30)))
    now: datetime.datetime = T0
    requeue: datetime.timedelta | None = None
    entries: list[Any] = dataclasses.field(default_factory=list)
    rate_limit: guards.Verdict = guards.PROCEED

    def view(self) -> views.KeyRotation:
        return views.KeyRotation(uid="uid-1", name=self.name, namespace="default", generation=1,
                                 created_at=self.created_at, spec=self.spec, status=self.status,
                                 annotations=self.annotations)

    def reconcile(self, max_moves: int = 200) -> stages.Decision:
        """One reconciliation: decide, answer reads, carry out actions, until the engine waits."""
        world = views.World(rate_limit=self.rate_limit)
        for _ in range(max_moves):
            decision = stages.decide(self.view(), world, self.now, self.policy)
            self.status = decision.status.model_dump(by_alias=True, mode="json", exclude_none=True)
            self.entries.extend(decision.entries)
            self.requeue = decision.requeue_after
            intent = decision.intent
            if intent is None:
                return decision
            answer = self.cluster.answer(intent, self.now)
            world = views.World(results={**world.results, intent: answer} if moves.is_observation(intent)
                                else {intent: answer}, rate_limit=self.rate_limit)
        raise AssertionError("no conclusion")

    def run(self, until: datetime.timedelta = datetime.timedelta(hours=1)) -> None:
        """Reconcile, and again whenever it asked to be called back, until it waits for nothing or `until`."""
        deadline = self.now + until
        self.reconcile()
        while self.requeue is not None and self.now + self.requeue <= deadline:
            self.now += self.requeue
            self.reconcile()

    def request(self, rotation_id: str, emergency: bool = False) -> None:
        self.annotations[ROTATE_ANNOTATION] = rotation_id
        if emergency:
            self.annotations["remediator.dev/rotate-emergency"] = "true"

    @property
    def conditions(self) -> dict[str, tuple[str, str]]:
        return {c["type"]: (c["status"], c["reason"]) for c in self.status.get("conditions", [])}

    @property
    def ready(self) -> tuple[str, str, str]:
        [ready] = [c for c in self.status.get("conditions", []) if c["type"] == "Ready"]
        return ready["status"], ready["reason"], ready["message"]

    @property
    def stage(self) -> str | None:
        return (self.status.get("rotation") or {}).get("stage")

    def kinds_of_actions(self) -> list[str]:
        return [type(action).__name__ for action in self.cluster.actions]
