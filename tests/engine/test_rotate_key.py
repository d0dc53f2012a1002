"""The rotateKey step: one rotation of a KeyRotation, asked for once and followed until verified."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from tests.engine.support import T0, Cluster, incident, run, step_state

from remediator.api.keyrotations import EMERGENCY_ANNOTATION, ROTATE_ANNOTATION
from remediator.engine import guards, incidents, intents

KEYS = {"secretRef": {"name": "shop-keys"}, "keys": [{"key": "API_KEY"}]}
LATER = T0 + datetime.timedelta(seconds=10)


class KeyRotations(Cluster):
    """The cluster plus one KeyRotation, `api-keys`, whose controller the test moves by hand."""

    def __init__(self, spec: dict[str, Any] | None = None, exists: bool = True) -> None:
        super().__init__()
        self.rotation: dict[str, Any] | None = {
            "metadata": {"name": "api-keys", "resourceVersion": "1", "annotations": {}},
            "spec": dict(spec or KEYS), "status": {}} if exists else None
        self.requests: list[intents.RequestRotation] = []

    def answer(self, intent: intents.Intent) -> intents.Result:
        if isinstance(intent, intents.ObserveKeyRotation):
            if self.rotation is None:
                return intents.failed("KeyRotationNotFound", f"KeyRotation {intent.name} does not exist")
            return intents.done(self.rotation)
        if isinstance(intent, intents.RequestRotation):
            self.acted.append(intent)
            self.requests.append(intent)
            assert self.rotation is not None
            self.rotation["metadata"]["annotations"].update({
                ROTATE_ANNOTATION: intent.request_id, EMERGENCY_ANNOTATION: str(intent.emergency).lower()})
            return intents.done({"written": True})
        if isinstance(intent, intents.EnsureKeyRotation):
            self.acted.append(intent)
            if self.rotation is None:
                self.rotation = {"metadata": {"name": intent.name, "resourceVersion": "1", "annotations": {
                    ROTATE_ANNOTATION: intent.request_id, EMERGENCY_ANNOTATION: str(intent.emergency).lower()}},
                    "spec": {}, "status": {}}
            return intents.done()
        return super().answer(intent)

    def take_up(self, stage: str, **status: Any) -> None:
        """The controller takes up the pending request and reaches `stage`."""
        assert self.rotation is not None
        request = self.rotation["metadata"]["annotations"][ROTATE_ANNOTATION]
        self.rotation["status"] = {"lastRequest": request, "rotation": {"id": request, "stage": stage, "version": 3},
                                   **status}


def rotate(**fields: Any) -> dict[str, Any]:
    return {"name": "rotate", "rotateKey": {"keyRotationRef": {"name": "api-keys"}, **fields}}


def test_a_rotate_key_step_asks_for_one_rotation_and_succeeds_once_it_is_verified() -> None:
    cluster = KeyRotations()
    obj, _ = run(incident(rotate()), cluster)
    assert [r.request_id for r in cluster.requests] == ["incident/inc/rotate/uid-1"]
    assert step_state(obj, "rotate")["state"] == "Running"

    for stage in ("Pending", "Promote", "Restart", "Verify"):
        cluster.take_up(stage)
        obj, _ = run(obj, cluster, now=LATER)
        assert step_state(obj, "rotate")["state"] == "Running"
    cluster.take_up("Grace", previousKeyExpiresAt="2026-11-23T03:00:00Z")
    obj, _ = run(obj, cluster, now=LATER)

    step = step_state(obj, "rotate")
    assert step["state"] == "Succeeded"
    assert "version 3" in step["message"] and "2026-11-23T03:00:00Z" in step["message"]
    stages = [e["message"] for e in obj.status["timeline"] if e["reason"] == "RotationStage"]
    assert [m.split(": ")[1] for m in stages] == ["Pending", "Promote", "Restart", "Verify", "Grace"]
    assert len(cluster.requests) == 1, "following the rotation never asks again"


def test_a_timed_out_and_retried_rotate_key_step_follows_the_same_rotation() -> None:
    cluster = KeyRotations()
    obj, _ = run(incident(rotate() | {"timeout": "30s", "retries": 2, "retryBackoff": "1s"}), cluster)
    cluster.take_up("Restart")
    # Past the deadline, and after the retry's backoff: the second attempt asks for nothing new.
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=31))
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=40))
    assert step_state(obj, "rotate")["attempts"] == 2
    cluster.take_up("Done")
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=50))
    assert step_state(obj, "rotate")["state"] == "Succeeded"
    assert len(cluster.requests) == 1


def test_a_rotation_that_was_rolled_back_fails_the_step_with_its_reason() -> None:
    cluster = KeyRotations()
    obj, _ = run(incident(rotate()), cluster)
    cluster.take_up("RolledBack", conditions=[{"type": "Failed", "status": "True", "reason": "VerificationFailed",
                                               "message": "https://shop/health answered 500"}])
    obj, _ = run(obj, cluster, now=LATER)
    step = step_state(obj, "rotate")
    reasons = [e["reason"] for e in obj.status["timeline"] if e.get("step") == "rotate"]
    assert (step["state"], reasons[-1]) == ("Failed", "VerificationFailed")
    assert "answered 500" in step["message"]


def test_a_request_the_key_rotation_refused_fails_the_step_instead_of_waiting() -> None:
    cluster = KeyRotations()
    obj, _ = run(incident(rotate()), cluster)
    assert cluster.rotation is not None
    cluster.rotation["status"] = {
        "lastRequest": "incident/inc/rotate/uid-1",
        "conditions": [{"type": "Ready", "status": "False", "reason": "SecretNotFound",
                        "message": "spec.secretRef.name: Secret shop-keys does not exist"}]}
    obj, _ = run(obj, cluster, now=LATER)
    step = step_state(obj, "rotate")
    assert step["state"] == "Failed" and "Secret shop-keys does not exist" in step["message"]


def test_another_pending_request_is_not_overwritten() -> None:
    cluster = KeyRotations()
    assert cluster.rotation is not None
    cluster.rotation["metadata"]["annotations"][ROTATE_ANNOTATION] = "incident/other/rotate/uid-9"
    obj, _ = run(incident(rotate()), cluster)
    assert cluster.requests == []
    assert "incident/other/rotate/uid-9" in step_state(obj, "rotate")["message"]
    cluster.take_up("Done")  # the other request is taken up: ours may be written now
    obj, _ = run(obj, cluster, now=LATER)
    assert [r.request_id for r in cluster.requests] == ["incident/inc/rotate/uid-1"]


def test_an_emergency_rotation_that_revokes_at_once_waits_for_approval_however_it_is_spelled() -> None:
    # The step does not say emergency; the KeyRotation does, with no grace period: old keys die at once.
    for spec, step in (({**KEYS, "emergency": True}, rotate()),
                       (KEYS, rotate(emergency=True)),
                       ({**KEYS, "gracePeriod": "0s"}, rotate()),
                       ({**KEYS, "keys": [{"key": "PW"}], "databaseRole": {
                           "connectionSecretRef": {"name": "db"}, "role": "app", "passwordKey": "PW",
                           "strategy": "inPlace"}}, rotate())):
        cluster = KeyRotations(spec)
        obj, _ = run(incident(step), cluster)
        assert step_state(obj, "rotate")["state"] == "AwaitingApproval", spec
        assert cluster.requests == []
        approved = incident(step, annotations={guards.APPROVE_ANNOTATION: "rotate",
                                               guards.APPROVED_BY_ANNOTATION: "oncall@example.com"})
        obj, _ = run(dataclasses.replace(approved, status=obj.status), cluster, now=LATER)
        assert [r.emergency for r in cluster.requests] == [spec.get("emergency", False) or step["rotateKey"]
                                                           .get("emergency", False)]


def test_a_rotation_with_a_grace_period_does_not_wait_for_approval() -> None:
    cluster = KeyRotations({**KEYS, "gracePeriod": "24h", "emergencyGracePeriod": "1h"})
    obj, _ = run(incident(rotate(emergency=True)), cluster)
    assert step_state(obj, "rotate")["state"] == "Running"
    assert cluster.requests[0].emergency is True


def test_an_inline_key_rotation_is_created_with_its_request_on_it() -> None:
    cluster = KeyRotations(exists=False)
    step = {"name": "rotate", "rotateKey": {"spec": {**KEYS, "gracePeriod": "1h"}}}
    obj, _ = run(incident(step), cluster)
    created = [i for i in cluster.acted if isinstance(i, intents.EnsureKeyRotation)]
    assert [(c.name, c.request_id) for c in created] == [("inc-rotate", "incident/inc/rotate/uid-1")]
    assert cluster.requests == [], "the request was on the object from its creation"
    cluster.take_up("Grace")
    obj, _ = run(obj, cluster, now=LATER)
    assert step_state(obj, "rotate")["state"] == "Succeeded"
    assert len(created) == 1


def test_a_missing_key_rotation_fails_the_step() -> None:
    obj, _ = run(incident(rotate()), KeyRotations(exists=False))
    step = step_state(obj, "rotate")
    assert (step["state"], "does not exist" in step["message"]) == ("Failed", True)


def test_a_rotate_key_step_is_refused_when_key_rotations_are_not_an_allowed_kind() -> None:
    cluster = KeyRotations()
    obj, _ = run(incident(rotate()), cluster, policy=incidents.Policy(kinds=frozenset({"Deployment"})))
    assert step_state(obj, "rotate")["state"] == "Failed"
    assert cluster.requests == []
