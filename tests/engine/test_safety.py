"""What a hostile user found (issue: safety first), reproduced against the engine, then fixed."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from remediator.engine import guards, incidents, intents

from .support import T0, WEB, Cluster, condition, incident, run, step_state

MS = datetime.timedelta(milliseconds=1)


def settle(obj: incidents.Incident, cluster: Cluster, *, tick: datetime.timedelta = MS,
           policy: incidents.Policy | None = None) -> incidents.Incident:
    """Reconcile again and again, letting time pass, until the incident finishes."""
    moment = T0
    for _ in range(50):
        obj, decision = run(obj, cluster, now=moment, tick=tick, policy=policy)
        if obj.status.get("phase") in ("Resolved", "Failed", "Planned"):
            return obj
        moment += decision.requeue_after or datetime.timedelta(seconds=1)
    raise AssertionError(f"never finished: {obj.status.get('phase')}")


def scale_calls(cluster: Cluster) -> list[int]:
    return [i.replicas for i in cluster.acted if isinstance(i, intents.ScaleTo)]


@pytest.mark.parametrize(("change", "expected"), [({"by": 1}, 3), ({"factor": 2}, 4)], ids=["by", "factor"])
def test_a_scale_slower_than_its_timeout_changes_the_replicas_once(change: dict[str, Any], expected: int) -> None:
    """by: 1 with timeout 1ms and retries 5 went from 2 to 8; factor 2 with retries 3, from 2 to 32."""
    cluster = Cluster(replicas=2)
    obj = settle(incident({"name": "up", "timeout": "1ms", "retries": 5, "retryBackoff": "1s",
                           "scale": {"target": WEB, **change}}), cluster, tick=5 * MS)
    assert cluster.replicas == expected
    assert step_state(obj, "up")["state"] == "Succeeded", "the scale happened: a late answer is still the truth"
    assert step_state(obj, "up")["message"] == f"scaled deployment/web from 2 to {expected}"


@pytest.mark.parametrize(("change", "expected"), [({"by": 1}, 3), ({"factor": 2}, 4)], ids=["by", "factor"])
def test_a_retry_re_issues_the_first_attempts_absolute_scale(change: dict[str, Any], expected: int) -> None:
    """The scale took effect but its answer was lost: each retry sets the same number, never plans again."""
    cluster = Cluster(replicas=2)
    cluster.lost_answers = 3
    obj = settle(incident({"name": "up", "retries": 3, "retryBackoff": "1s", "scale": {"target": WEB, **change}}),
                 cluster)
    assert scale_calls(cluster) == [expected] * 4
    assert cluster.replicas == expected and step_state(obj, "up")["attempts"] == 4
    assert step_state(obj, "up")["state"] == "Succeeded"


def test_a_retried_rollout_restart_makes_one_rollout() -> None:
    """restart with retries 3 made 4 rollouts: each retry must stamp the first attempt's restartedAt."""
    cluster = Cluster(replicas=2)
    cluster.lost_answers = 3
    settle(incident({"name": "kick", "retries": 3, "retryBackoff": "1s", "restart": {"target": WEB}}), cluster)
    stamps = {i.restarted_at for i in cluster.acted if isinstance(i, intents.RolloutRestart)}
    assert len(stamps) == 1 and cluster.generation == 2, "one rollout"


def test_an_intent_found_in_place_after_the_deadline_succeeds_without_acting_again() -> None:
    """The operator recorded "to 4", scaled, and died; it came back after the attempt's deadline."""
    cluster = Cluster(replicas=2)
    obj = incident({"name": "up", "timeout": "10s", "retries": 2, "scale": {"target": WEB, "by": 2}})
    recorded, decision = _until_intent(obj, cluster, intents.ScaleTo)
    assert isinstance(decision, intents.ScaleTo) and decision.replicas == 4
    cluster.replicas = 4  # it happened; the answer never came back
    cluster.acted.clear()
    obj, _ = run(recorded, cluster, now=T0 + datetime.timedelta(minutes=5))
    assert scale_calls(cluster) == [] and cluster.replicas == 4
    assert step_state(obj, "up")["state"] == "Succeeded"
    assert "found in place after the attempt's deadline" in step_state(obj, "up")["message"]


def test_an_intent_not_carried_out_before_the_deadline_fails_the_attempt_saying_nothing_changed() -> None:
    cluster = Cluster(replicas=2)
    obj = incident({"name": "up", "timeout": "10s", "retries": 1, "retryBackoff": "5s",
                    "scale": {"target": WEB, "by": 2}})
    recorded, _ = _until_intent(obj, cluster, intents.ScaleTo)  # died before the scale call
    cluster.acted.clear()
    late = T0 + datetime.timedelta(minutes=5)
    obj, _ = run(recorded, cluster, now=late)
    assert scale_calls(cluster) == [], "a timed-out attempt never starts its action"
    state = step_state(obj, "up")
    assert state["state"] == "Pending" and state["attempts"] == 1
    assert "timed out after 10s; nothing was changed: deployment/web has 2 replicas, not 4" in state["message"]
    obj, _ = run(obj, cluster, now=late + datetime.timedelta(seconds=6))
    assert scale_calls(cluster) == [4], "the retry issues the recorded 4, not 2 + 2 planned again"
    assert step_state(obj, "up")["state"] == "Succeeded"


@pytest.mark.parametrize("change", [{"by": -100}, {"factor": 0.5, "maxReplicas": 0}, {"replicas": 0}],
                         ids=["by", "factor-max-0", "replicas"])
def test_a_scale_to_zero_waits_for_approval_however_it_is_spelled(change: dict[str, Any]) -> None:
    cluster = Cluster(replicas=3)
    obj, _ = run(incident({"name": "stop", "scale": {"target": WEB, **change}}, severity="P0"), cluster)
    assert step_state(obj, "stop")["state"] == "AwaitingApproval" and obj.status["phase"] == "AwaitingApproval"
    assert "scale deployment/web from 3 to 0" in step_state(obj, "stop")["message"]
    assert cluster.replicas == 3 and cluster.acted == []


def test_a_scale_above_the_operators_ceiling_is_refused_and_never_planned_as_a_number() -> None:
    cluster = Cluster(replicas=3)
    for dry_run in (False, True):
        obj, _ = run(incident({"name": "up", "scale": {"target": WEB, "factor": 1e300}}, dryRun=dry_run), cluster,
                     policy=incidents.Policy(max_replicas=50))
        state = step_state(obj, "up")
        assert state["state"] == "Failed" and "above the operator's ceiling of 50" in state["message"]
        assert cluster.acted == [] and cluster.replicas == 3


def test_a_forged_cooldown_stamp_holds_a_target_no_longer_than_the_policy_allows() -> None:
    cluster = Cluster(annotations={guards.cooldown_annotation("scale"): "9999-12-31T00:00:00Z nobody/forged"})
    policy = incidents.Policy(max_cooldown=datetime.timedelta(minutes=15))
    obj, decision = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 4}}), cluster, policy=policy)
    assert decision.requeue_after == datetime.timedelta(minutes=15) and cluster.replicas == 2
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(minutes=15), policy=policy)
    assert cluster.replicas == 4 and obj.status["phase"] == "Resolved"


def test_an_incidents_own_cooldown_is_capped_by_the_policy() -> None:
    cluster = Cluster()
    policy = incidents.Policy(max_cooldown=datetime.timedelta(minutes=30))
    run(incident({"name": "up", "scale": {"target": WEB, "replicas": 4}}, cooldown="8760h"), cluster, policy=policy)
    stamp = cluster.annotations[guards.cooldown_annotation("scale")]
    assert stamp.startswith("2026-11-22T03:30:00Z ")


def _until_intent(obj: incidents.Incident, cluster: Cluster,
                  kind: type) -> tuple[incidents.Incident, intents.Intent | None]:
    """Run until the engine asks for an intent of `kind`; return the status recorded then (a crash there)."""
    results: dict[intents.Intent, intents.Result] = {}
    for _ in range(20):
        decision = incidents.decide(obj, incidents.World(results=dict(results)), T0, incidents.Policy())
        obj = dataclasses.replace(obj, status=decision.status.model_dump(by_alias=True, mode="json",
                                                                          exclude_none=True))
        if isinstance(decision.intent, kind):
            return obj, decision.intent
        assert decision.intent is not None
        result = cluster.answer(decision.intent)
        if isinstance(decision.intent, intents.ClaimTarget):
            results[intents.ObserveTarget(decision.intent.step, decision.intent.kind, decision.intent.name)] = result
        else:
            results[decision.intent] = result
    raise AssertionError(f"never asked for {kind.__name__}")


def test_failed_steps_that_let_the_incident_continue_never_make_it_resolved() -> None:
    """With onFailure: continue, 4 failed steps out of 5 ended Resolved, "every remediation step finished"."""
    cluster = Cluster(replicas=2)
    cluster.fail_scale = ["ApiError"] * 4
    steps = [{"name": f"up-{n}", "onFailure": "continue", "scale": {"target": WEB, "replicas": 3 + n}}
             for n in range(5)]
    obj = settle(incident(*steps), cluster)
    assert [step_state(obj, f"up-{n}")["state"] for n in range(5)] == ["Failed"] * 4 + ["Succeeded"]
    assert obj.status["phase"] == "Failed"
    assert condition(obj, "Failed") == ("True", "StepsFailed") and condition(obj, "Resolved") is None
    assert condition(obj, "Mitigated") == ("False", "StepsFailed")
    assert "4 of 5 step(s) failed: up-0, up-1, up-2, up-3" in [c["message"] for c in obj.status["conditions"]]


def test_an_optional_step_may_fail_and_the_incident_resolves_degraded() -> None:
    cluster = Cluster(replicas=2)
    cluster.fail_scale = ["ApiError"]
    obj = settle(incident({"name": "nice-to-have", "optional": True, "scale": {"target": WEB, "replicas": 3}},
                          {"name": "up", "scale": {"target": WEB, "replicas": 4}}), cluster)
    assert obj.status["phase"] == "Resolved" and cluster.replicas == 4
    assert condition(obj, "Degraded") == ("True", "OptionalStepsFailed")
    assert condition(obj, "Mitigated") == ("True", "StepsSucceeded")


def runbook(*steps: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    return {"metadata": {"name": "scale-web"}, "spec": {"steps": list(steps), "defaults": defaults}}


def test_an_incident_runs_its_runbooks_steps_frozen_when_it_starts() -> None:
    """runbookRef was ignored: an Incident with steps: [] resolved without acting."""
    cluster = Cluster(replicas=2)
    cluster.runbooks["scale-web"] = runbook({"name": "scale-out", "scale": {"target": WEB, "replicas": 4}})
    obj, _ = run(incident({"name": "verify", "waitForRollout": {"target": WEB}}, runbookRef={"name": "scale-web"}),
                 cluster)
    assert cluster.replicas == 4 and obj.status["phase"] == "Resolved"
    assert [s["name"] for s in obj.status["steps"]] == ["scale-out", "verify"], "the Runbook's steps run first"
    assert obj.status["runbookSteps"][0]["scale"]["replicas"] == 4


def test_a_runbook_edited_after_the_incident_started_changes_nothing_it_does() -> None:
    cluster = Cluster(replicas=2)
    cluster.runbooks["scale-web"] = runbook({"name": "scale-out", "requiresApproval": True,
                                             "scale": {"target": WEB, "replicas": 4}})
    obj, _ = run(incident(runbookRef={"name": "scale-web"}, steps=[]), cluster)
    assert step_state(obj, "scale-out")["state"] == "AwaitingApproval"
    cluster.runbooks["scale-web"] = runbook({"name": "scale-out", "scale": {"target": WEB, "replicas": 40}})
    approved = dataclasses.replace(obj, annotations={"remediator.dev/approve": "scale-out"})
    obj, _ = run(approved, cluster)
    assert cluster.replicas == 4, "the steps frozen at the start, not the edited Runbook's"


def test_the_runbooks_default_approval_holds_for_its_steps() -> None:
    cluster = Cluster(replicas=2)
    cluster.runbooks["scale-web"] = runbook({"name": "scale-out", "scale": {"target": WEB, "replicas": 4}},
                                            requiresApproval=True)
    obj, _ = run(incident(runbookRef={"name": "scale-web"}, steps=[]), cluster)
    assert step_state(obj, "scale-out")["state"] == "AwaitingApproval" and cluster.replicas == 2


def test_a_missing_runbook_is_reported_and_nothing_acts() -> None:
    cluster = Cluster(replicas=2)
    obj, decision = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 3}},
                                 runbookRef={"name": "nowhere"}), cluster)
    assert cluster.acted == [] and cluster.replicas == 2
    assert condition(obj, "Ready") == ("False", "RunbookNotFound") and condition(obj, "Resolved") is None
    assert decision.requeue_after == datetime.timedelta(seconds=30), "looked for again"
    cluster.runbooks["nowhere"] = runbook({"name": "scale-out", "scale": {"target": WEB, "replicas": 4}})
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=30))
    assert cluster.replicas == 3 and obj.status["phase"] == "Resolved", "the Runbook's step, then the own one"


def test_a_runbook_whose_step_names_clash_with_the_incidents_is_refused() -> None:
    cluster = Cluster(replicas=2)
    cluster.runbooks["scale-web"] = runbook({"name": "up", "scale": {"target": WEB, "replicas": 4}})
    obj, _ = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 3}},
                          runbookRef={"name": "scale-web"}), cluster)
    assert condition(obj, "Ready") == ("False", "InvalidRunbook") and cluster.acted == []


def test_steps_edited_while_the_incident_runs_are_refused_and_nothing_more_is_done() -> None:
    """Replacing steps while a waitForRollout ran ended Resolved with that step still Running."""
    cluster = Cluster(replicas=2)
    cluster.rolling = True
    started, _ = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 3}},
                              {"name": "settled", "waitForRollout": {"target": WEB}}), cluster)
    assert step_state(started, "settled")["state"] == "Running"
    edited = dataclasses.replace(started, spec={**started.spec, "steps": [
        {"name": "up", "scale": {"target": WEB, "replicas": 9}}]})
    cluster.acted.clear()
    obj, _ = run(edited, cluster, now=T0 + datetime.timedelta(seconds=5))
    assert condition(obj, "Ready") == ("False", "StepsChanged") and obj.status["phase"] != "Resolved"
    assert cluster.acted == [] and cluster.replicas == 3
    assert "StepsChanged" in [e["reason"] for e in obj.status["timeline"]]
    restored = dataclasses.replace(obj, spec=started.spec)
    obj, _ = run(restored, cluster, now=T0 + datetime.timedelta(seconds=10))
    assert condition(obj, "Ready") == ("False", "Remediating") and step_state(obj, "settled")["state"] == "Running"


def test_an_incident_that_arrives_approved_is_not_approved() -> None:
    """Created with approve: all and approved-by: the-cto, a P0 replicas: 0 ran at once."""
    cluster = Cluster(replicas=3)
    forged = {"remediator.dev/approve": "all", "remediator.dev/approved-by": "the-cto"}
    obj, _ = run(incident({"name": "stop", "scale": {"target": WEB, "replicas": 0}}, severity="P0",
                          annotations=forged), cluster)
    assert cluster.replicas == 3 and step_state(obj, "stop")["state"] == "AwaitingApproval"
    ignored = [e for e in obj.status["timeline"] if e["reason"] == "ApprovalIgnored"]
    assert len(ignored) == 1 and "remediator.dev/approve=all" in ignored[0]["message"]
    assert "the-cto" not in str(obj.status)
    # The same annotation later is still the creation's; once removed and given again, it counts.
    obj, _ = run(obj, cluster)
    assert cluster.replicas == 3
    obj, _ = run(dataclasses.replace(obj, annotations={}), cluster)
    obj, _ = run(dataclasses.replace(obj, annotations={"remediator.dev/approve": "stop",
                                                       "remediator.dev/approved-by": "alice"}), cluster)
    assert cluster.replicas == 0 and step_state(obj, "stop")["approvedBy"] == "alice"


def test_a_retried_session_kill_signals_only_the_sessions_its_first_attempt_listed() -> None:
    """A retry never plans again: a session that started matching meanwhile is not terminated."""
    cluster = Cluster()
    cluster.sessions = [{"pid": 101, "backendStart": "2026-11-22T02:00:00+00:00"}]
    cluster.fail_database = ["ConnectionFailed"]
    secret = {"connectionSecretRef": {"name": "db"}}
    obj, _ = run(incident({"name": "kill", "retries": 1, "retryBackoff": "5s", "database": {
        **secret, "terminateLongRunning": {"olderThan": "1m"}}}), cluster,
        policy=incidents.Policy(approval=guards.ApprovalPolicy(frozenset())))
    assert step_state(obj, "kill")["state"] == "Pending" and cluster.terminated == []
    assert step_state(obj, "kill")["result"]["plannedTargets"] == [[101, "2026-11-22T02:00:00+00:00"]]
    cluster.sessions.append({"pid": 202, "backendStart": "2026-11-22T03:00:01+00:00"})  # a newcomer
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=6),
                 policy=incidents.Policy(approval=guards.ApprovalPolicy(frozenset())))
    assert step_state(obj, "kill")["state"] == "Succeeded" and cluster.terminated == [101]


def test_switching_a_running_incident_to_a_dry_run_is_refused_too() -> None:
    """Else its timeline would end "Planned" after it had acted."""
    cluster = Cluster(replicas=2)
    cluster.rolling = True
    started, _ = run(incident({"name": "up", "scale": {"target": WEB, "replicas": 3}},
                              {"name": "settled", "waitForRollout": {"target": WEB}}), cluster)
    flipped = dataclasses.replace(started, spec={**started.spec, "dryRun": True})
    obj, _ = run(flipped, cluster, now=T0 + datetime.timedelta(seconds=5))
    assert condition(obj, "Ready") == ("False", "StepsChanged") and obj.status["phase"] != "Planned"


def test_a_kind_allow_list_without_job_refuses_a_job_step() -> None:
    cluster = Cluster()
    obj, _ = run(incident({"name": "backup", "job": {"template": {"image": "postgres:16"}}}), cluster,
                 policy=incidents.Policy(kinds=frozenset({"Deployment"}),
                                         approval=guards.ApprovalPolicy(frozenset())))
    assert step_state(obj, "backup")["state"] == "Failed"
    assert step_state(obj, "backup")["message"] == "kind Job is not on the operator's kind allow-list"
    assert cluster.acted == []


@pytest.mark.parametrize(("escalate", "escalated"), [(True, ("True", "RemediationLoop")), (False, None)])
def test_an_incident_the_receivers_loop_guard_held_says_why_whoever_reconciles_it(
        escalate: bool, escalated: tuple[str, str] | None) -> None:
    """The hold is stored in spec.source by the create: the first reconciliation records it (Escalated for a
    remediation loop, a timeline entry for consecutive failures) once, and nothing acts."""
    cluster = Cluster(replicas=3)
    reason = "RemediationLoop" if escalate else "ConsecutiveFailures"
    source = {"alertname": "KubePodCrashLooping",
              "hold": {"reason": reason, "message": "3 incidents for this target within 1h", "escalate": escalate}}
    obj, _ = run(incident({"name": "stop", "requiresApproval": True, "scale": {"target": WEB, "replicas": 0}},
                          source=source), cluster)
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(seconds=5))
    assert cluster.replicas == 3 and step_state(obj, "stop")["state"] == "AwaitingApproval"
    assert condition(obj, "Escalated") == escalated
    assert [e["reason"] for e in obj.status["timeline"]].count(reason) == 1
