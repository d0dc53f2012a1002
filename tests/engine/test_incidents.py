"""The Incident engine, without a cluster: step order, retries, timeouts, guards, escalation, crashes."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from remediator.engine import guards, incidents, intents

from .support import RESOLVED, T0, WEB, Cluster, condition, incident, run, step_state


def test_steps_run_in_order_and_the_incident_resolves_with_a_timeline() -> None:
    cluster = Cluster(replicas=2)
    obj, _ = run(incident({"name": "restart", "restart": {"target": WEB}},
                                 {"name": "scale-out", "scale": {"target": WEB, "factor": 2, "maxReplicas": 3}},
                                 {"name": "settled", "waitForRollout": {"target": WEB}}), cluster)
    assert [type(i).__name__ for i in cluster.acted] == ["ClaimTarget", "RolloutRestart", "ClaimTarget", "ScaleTo",
                                                          "ReleaseTargets"]
    assert cluster.replicas == 3 and guards.LOCK_ANNOTATION not in cluster.annotations
    assert obj.status["phase"] == "Resolved"
    assert [e["reason"] for e in obj.status["timeline"]] == [
        "Acknowledged", "StepSucceeded", "StepSucceeded", "StepSucceeded", "Resolved"]
    assert step_state(obj, "scale-out")["message"] == "scaled deployment/web from 2 to 3"


def test_a_crash_after_recording_the_intent_repeats_the_same_absolute_scale() -> None:
    cluster = Cluster(replicas=2)
    obj = incident({"name": "plus-two", "scale": {"target": WEB, "by": 2}})
    # The first reconciliation records "to 4" and is killed before the scale call is answered.
    results: dict[intents.Intent, intents.Result] = {}
    for _ in range(10):
        decision = incidents.decide(obj, incidents.World(results=dict(results)), T0, incidents.Policy())
        obj = dataclasses.replace(obj, status=decision.status.model_dump(by_alias=True, mode="json",
                                                                          exclude_none=True))
        if isinstance(decision.intent, intents.ScaleTo):
            cluster.replicas = decision.intent.replicas  # it happened, but the operator died before recording it
            break
        result = cluster.answer(decision.intent) if decision.intent else None
        if isinstance(decision.intent, intents.ClaimTarget):
            results.clear()
        elif decision.intent is not None and result is not None:
            results[decision.intent] = result
    assert cluster.replicas == 4
    obj, _ = run(obj, cluster)
    scale_calls = [i for i in cluster.acted if isinstance(i, intents.ScaleTo)]
    assert [i.replicas for i in scale_calls] == [4], "the resumed step re-applies 4, it does not add 2 again"
    assert cluster.replicas == 4 and obj.status["phase"] == "Resolved"


def test_a_failed_attempt_is_retried_after_backoff_then_succeeds() -> None:
    cluster = Cluster(replicas=2)
    cluster.fail_scale = ["ApiError"]
    obj, decision = run(incident({"name": "up", "retries": 2, "retryBackoff": "10s",
                                  "scale": {"target": WEB, "replicas": 5}}), cluster)
    assert step_state(obj, "up")["state"] == "Pending"
    assert decision.requeue_after == datetime.timedelta(seconds=10)
    assert "StepRetrying" in [e["reason"] for e in obj.status["timeline"]]

    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=5))
    assert step_state(obj, "up")["state"] == "Pending", "no attempt before the backoff has passed"
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=11))
    assert step_state(obj, "up")["state"] == "Succeeded" and step_state(obj, "up")["attempts"] == 2
    assert cluster.replicas == 5


def test_on_failure_continue_goes_on_and_abort_stops_the_incident() -> None:
    cluster = Cluster(replicas=2)
    cluster.fail_scale = ["ApiError", "ApiError"]
    obj, _ = run(incident({"name": "optional", "onFailure": "continue", "scale": {"target": WEB, "replicas": 3}},
                          {"name": "required", "scale": {"target": WEB, "replicas": 4}},
                          {"name": "never", "restart": {"target": WEB}}), cluster)
    assert [step_state(obj, n)["state"] for n in ("optional", "required", "never")] == [
        "Failed", "Failed", "Skipped"]
    assert obj.status["phase"] == "Failed" and condition(obj, "Failed") == ("True", "StepFailed")
    assert guards.LOCK_ANNOTATION not in cluster.annotations, "locks are released when the incident fails"


def test_on_failure_escalate_marks_the_incident_escalated() -> None:
    cluster = Cluster()
    cluster.fail_scale = ["ApiError"]
    obj, _ = run(incident({"name": "up", "onFailure": "escalate", "scale": {"target": WEB, "replicas": 3}}), cluster)
    assert condition(obj, "Escalated") == ("True", "StepFailed")


def test_an_unmitigated_incident_escalates_after_its_severity_response_time() -> None:
    cluster = Cluster()
    obj = incident({"name": "verify", "httpCheck": {"url": "http://web/healthz", "successThreshold": 3,
                                                    "interval": "1m"}}, severity="P0")
    obj, decision = run(obj, cluster)
    assert condition(obj, "Escalated") is None and decision.requeue_after is not None
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(minutes=5))
    assert condition(obj, "Escalated") == ("True", "NotMitigatedInTime")
    assert obj.status["timeline"][-1]["type"] == "Warning"


def test_a_step_that_outlives_its_timeout_fails_with_reason_timeout() -> None:
    cluster = Cluster()
    cluster.http = [500] * 10
    obj, _ = run(incident({"name": "verify", "timeout": "30s",
                           "httpCheck": {"url": "http://web/healthz", "interval": "10s"}}), cluster)
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=31))
    state = step_state(obj, "verify")
    assert state["state"] == "Failed"
    assert state["message"].startswith("attempt 1 timed out after 30s: ") and "500" in state["message"], \
        "the timeline says what the step was waiting for"


def test_an_http_check_needs_consecutive_passes() -> None:
    cluster = Cluster()
    cluster.http = [200, 500, 200, 200]
    obj = incident({"name": "verify", "httpCheck": {"url": "http://web/healthz", "successThreshold": 2,
                                                    "interval": "5s"}})
    moment = T0
    for _ in range(6):
        obj, _ = run(obj, cluster, now=moment)
        if step_state(obj, "verify")["state"] == "Succeeded":
            break
        moment += datetime.timedelta(seconds=5)
    assert step_state(obj, "verify")["result"]["probes"] == 4
    assert condition(obj, "Verified") == ("True", "ChecksPassed")


def test_dry_run_records_the_plan_and_acts_on_nothing() -> None:
    cluster = Cluster(replicas=2)
    obj, _ = run(incident({"name": "up", "scale": {"target": WEB, "factor": 3}},
                          {"name": "back", "rollback": {"target": WEB}}), cluster,
                 policy=incidents.Policy(dry_run=True))
    assert cluster.acted == [] and cluster.replicas == 2
    assert step_state(obj, "up")["message"] == "dry run: would scale deployment/web from 2 to 6"
    assert step_state(obj, "back")["message"] == "dry run: would roll back deployment/web to the previous revision"
    assert obj.status["phase"] == "Planned"


def test_a_rollback_waits_for_approval_and_records_who_approved() -> None:
    cluster = Cluster()
    step = {"name": "undo", "rollback": {"target": WEB}}
    obj, decision = run(incident(step), cluster)
    assert step_state(obj, "undo")["state"] == "AwaitingApproval" and obj.status["phase"] == "AwaitingApproval"
    assert cluster.acted == [] and decision.requeue_after is not None  # only the escalation deadline

    approved = dataclasses.replace(obj, annotations={"remediator.dev/approve": "undo",
                                                     "remediator.dev/approved-by": "alice"})
    obj, _ = run(approved, cluster)
    assert step_state(obj, "undo")["state"] == "Succeeded" and step_state(obj, "undo")["approvedBy"] == "alice"
    assert [type(i).__name__ for i in cluster.acted] == ["ClaimTarget", "EnsureRollbackRequest", "ReleaseTargets"]
    assert "approved by alice" in [e["message"] for e in obj.status["timeline"]]


def test_a_second_incident_waits_while_the_first_holds_the_target() -> None:
    cluster = Cluster(annotations={guards.LOCK_ANNOTATION: "shop/first"})
    cluster.incidents["shop/first"] = {"status": {"phase": "Remediating"}}
    obj, decision = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 4}}), cluster)
    assert step_state(obj, "up")["state"] == "Pending" and "shop/first" in step_state(obj, "up")["message"]
    assert "TargetLocked" in [e["reason"] for e in obj.status["timeline"]]
    assert cluster.replicas == 2 and decision.requeue_after is not None

    del cluster.annotations[guards.LOCK_ANNOTATION]
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=3))
    assert cluster.replicas == 4 and obj.status["phase"] == "Resolved"


@pytest.mark.parametrize("holder", [None, {"status": {"conditions": [RESOLVED]}}], ids=["deleted", "resolved"])
def test_a_lock_left_by_an_incident_that_is_gone_or_finished_is_taken_over(
        holder: dict[str, Any] | None) -> None:
    cluster = Cluster(annotations={guards.LOCK_ANNOTATION: "shop/first"})
    if holder is not None:
        cluster.incidents["shop/first"] = holder
    obj, _ = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 4}}), cluster)
    assert cluster.replicas == 4 and obj.status["phase"] == "Resolved"
    taken = [e for e in obj.status["timeline"] if e["reason"] == "StaleLockTakenOver"]
    assert len(taken) == 1 and "shop/first" in taken[0]["message"]
    assert guards.LOCK_ANNOTATION not in cluster.annotations


def test_a_running_step_whose_lock_was_released_before_a_crash_is_not_repeated() -> None:
    """The operator released the lock after scaling by 2 and died before writing the result down."""
    cluster = Cluster(replicas=2)
    started, _ = run(incident({"name": "up", "scale": {"target": WEB, "by": 2}}), Cluster(replicas=2))
    before_crash = dataclasses.replace(started, status={**started.status, "steps": [
        {**step_state(started, "up"), "state": "Running", "finishedAt": None,
         "result": {**step_state(started, "up")["result"], "claimed": True}}], "conditions": [
        c for c in started.status["conditions"] if c["type"] not in ("Resolved", "Mitigated")]})
    cluster.replicas = 4  # the scale happened; the lock is gone (released)
    obj, _ = run(before_crash, cluster)
    assert cluster.replicas == 4, "scaled by 2 once, not twice"
    assert [type(i).__name__ for i in cluster.acted] == ["ClaimTarget", "ScaleTo", "ReleaseTargets"]
    assert obj.status["phase"] == "Resolved"
    assert guards.LOCK_ANNOTATION not in cluster.annotations


def test_a_running_step_waits_while_another_incident_holds_its_target() -> None:
    cluster = Cluster(replicas=2)
    started, _ = run(incident({"name": "up", "scale": {"target": WEB, "by": 2}}), Cluster(replicas=2))
    running = dataclasses.replace(started, status={**started.status, "steps": [
        {**step_state(started, "up"), "state": "Running",
         "result": {**step_state(started, "up")["result"], "claimed": True}}], "conditions": [
        c for c in started.status["conditions"] if c["type"] not in ("Resolved", "Mitigated")]})
    cluster.annotations[guards.LOCK_ANNOTATION] = "shop/other"
    cluster.incidents["shop/other"] = {"status": {"phase": "Remediating"}}
    obj, decision = run(running, cluster)
    assert [type(i).__name__ for i in cluster.acted] == []
    assert "TargetLocked" in [e["reason"] for e in obj.status["timeline"]]
    assert decision.requeue_after is not None and cluster.replicas == 2


def test_no_second_scale_inside_the_cooldown_of_another_incident() -> None:
    stamp = guards.format_cooldown(T0 + datetime.timedelta(minutes=10), "shop/first")
    cluster = Cluster(annotations={guards.cooldown_annotation("scale"): stamp})
    obj, decision = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 4}}), cluster)
    assert "CoolingDown" in [e["reason"] for e in obj.status["timeline"]]
    assert decision.requeue_after == datetime.timedelta(minutes=10)
    assert cluster.replicas == 2 and decision.held_by == "CoolingDown"


def test_the_rate_limit_holds_steps_back_in_an_alert_storm() -> None:
    cluster = Cluster()
    limited = guards.Verdict(guards.Outcome.WAIT, "RateLimited", "operator-wide rate limit reached",
                             retry_at=T0 + datetime.timedelta(seconds=20))
    obj, decision = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 4}}), cluster,
                        rate_limit=limited)
    assert "RateLimited" in [e["reason"] for e in obj.status["timeline"]]
    assert decision.requeue_after == datetime.timedelta(seconds=20) and cluster.replicas == 2
    assert decision.held_by == guards.RATE_LIMITED  # what remediator_rate_limit_queued counts


def test_targets_outside_the_allow_lists_fail_the_step_and_change_nothing() -> None:
    cluster = Cluster()
    obj, _ = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 4}}), cluster,
                 policy=incidents.Policy(namespaces=frozenset({"payments"})))
    assert step_state(obj, "up")["state"] == "Failed"
    assert step_state(obj, "up")["message"] == "namespace shop is not on the operator's namespace allow-list"
    assert cluster.acted == []


def test_a_pod_restart_deletes_within_max_unavailable_and_never_touches_replacements() -> None:
    from remediator.engine import pod_restarts

    snapshot = ["a", "b", "c"]

    def pod(uid: str, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
        return {"name": f"web-{uid}", "uid": uid, "ready": ready, "terminating": terminating, "labels": {}}

    first = pod_restarts.next_round(snapshot, [pod("a"), pod("b"), pod("c")], 1)
    assert first.batch == ("web-a",)
    waiting = pod_restarts.next_round(snapshot, [pod("a", terminating=True), pod("b"), pod("c"), pod("x", False)], 1)
    assert waiting.batch == () and not waiting.done
    second = pod_restarts.next_round(snapshot, [pod("b"), pod("c"), pod("x")], 1)
    assert second.batch == ("web-b",)
    assert pod_restarts.next_round(snapshot, [pod("x"), pod("y"), pod("z")], 1).done
    assert pod_restarts.next_round(snapshot, [pod("a"), pod("b"), pod("c")], "67%").batch == ("web-a", "web-b")


def test_a_deleted_incident_releases_every_target_its_steps_may_have_locked() -> None:
    """Including one whose claim landed with no status write after it (the deletion came first)."""
    obj = incident({"name": "up", "scale": {"target": WEB, "replicas": 4}},
                   {"name": "settled", "waitForRollout": {"target": {"kind": "Deployment", "name": "api"}}},
                   {"name": "restart", "restart": {"target": {"kind": "StatefulSet", "name": "db"}}})
    release = incidents.release_on_deletion(obj)
    assert release is not None and release.holder == "shop/inc"
    assert release.targets == (("Deployment", "web"), ("StatefulSet", "db")), "waitForRollout never locks"

    broken = dataclasses.replace(obj, spec={"steps": "not a list"}, status={"steps": [
        {"name": "up", "state": "Running", "result": {"target": {"kind": "Deployment", "name": "web"},
                                                      "claimed": True}}]})
    release = incidents.release_on_deletion(broken)
    assert release is not None and release.targets == (("Deployment", "web"),)
