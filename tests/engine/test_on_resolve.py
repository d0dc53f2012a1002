"""When the alerts of an Incident resolve (AlertResolved=True, set by the receiver), spec.onResolve says
which steps not yet started still run; a step in flight always finishes."""

from __future__ import annotations

import dataclasses
from typing import Any

from remediator.engine import incidents, intents

from .support import T0, WEB, Cluster, condition, incident, run, step_state

UNDO = {"name": "undo", "rollback": {"target": WEB}}  # waits for approval
RESTART = {"name": "restart", "restart": {"target": WEB}}
SETTLED = {"name": "settled", "waitForRollout": {"target": WEB}, "verify": True}


def alert_resolved(obj: incidents.Incident) -> incidents.Incident:
    conditions = [*obj.status.get("conditions", []), {
        "type": "AlertResolved", "status": "True", "reason": "AlertResolved", "message": "",
        "lastTransitionTime": T0.isoformat()}]
    return dataclasses.replace(obj, status={**obj.status, "conditions": conditions})


def acted(cluster: Cluster) -> list[str]:
    return [type(i).__name__ for i in cluster.acted if not isinstance(i, intents.ClaimTarget | intents.ReleaseTargets)]


def test_keep_running_skips_the_step_awaiting_approval_and_runs_the_rest() -> None:
    cluster = Cluster()
    obj, _ = run(incident(UNDO, RESTART), cluster)
    assert step_state(obj, "undo")["state"] == "AwaitingApproval"

    obj, _ = run(alert_resolved(obj), cluster)

    assert step_state(obj, "undo")["state"] == "Skipped"
    assert step_state(obj, "undo")["message"] == "not run: the alert resolved (onResolve: keepRunning)"
    assert step_state(obj, "restart")["state"] == "Succeeded"
    assert acted(cluster) == ["RolloutRestart"]
    assert condition(obj, "Resolved") == ("True", "AlertResolved")
    assert "AlertResolved" in [e["reason"] for e in obj.status["timeline"] if e.get("step") == "undo"]


def test_cancel_pending_starts_no_further_step() -> None:
    cluster = Cluster()
    obj, _ = run(incident(UNDO, RESTART, onResolve="cancelPending"), cluster)
    obj, _ = run(alert_resolved(obj), cluster)
    assert [step_state(obj, n)["state"] for n in ("undo", "restart")] == ["Skipped", "Skipped"]
    assert acted(cluster) == []
    assert obj.status["phase"] == "Resolved"


def test_run_verification_runs_only_the_verify_steps() -> None:
    cluster = Cluster()
    obj, _ = run(incident(UNDO, RESTART, SETTLED, onResolve="runVerification"), cluster)
    obj, _ = run(alert_resolved(obj), cluster)
    assert [step_state(obj, n)["state"] for n in ("undo", "restart", "settled")] == [
        "Skipped", "Skipped", "Succeeded"]
    assert acted(cluster) == []


def test_a_step_in_flight_is_never_cut_short() -> None:
    cluster = Cluster()
    cluster.rolling = True  # the rollout the wait follows is under way
    waiting: dict[str, Any] = {"name": "settled", "waitForRollout": {"target": WEB}}
    obj, _ = run(incident(waiting, RESTART, onResolve="cancelPending"), cluster)
    assert step_state(obj, "settled")["state"] == "Running"

    obj, _ = run(alert_resolved(obj), cluster)
    assert step_state(obj, "settled")["state"] == "Running"
    assert step_state(obj, "restart")["state"] == "Skipped"

    cluster.rolling = False
    obj, _ = run(obj, cluster)
    assert step_state(obj, "settled")["state"] == "Succeeded"
    assert acted(cluster) == []
    assert condition(obj, "Resolved") == ("True", "AlertResolved")


def test_without_resolved_alerts_nothing_is_skipped() -> None:
    cluster = Cluster()
    obj, _ = run(incident(UNDO, RESTART, onResolve="cancelPending"), cluster)
    assert step_state(obj, "undo")["state"] == "AwaitingApproval"
    assert step_state(obj, "restart")["state"] == "Pending"
