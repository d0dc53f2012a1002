"""`kubectl remediator retry`: a failed incident runs again from its failed step, once per raised spec.retry,
with its earlier approvals no longer counting."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from tests.engine.support import T0, WEB, Cluster, condition, incident, run, step_state

from remediator.engine import guards, incidents

LATER = T0 + datetime.timedelta(minutes=5)
UP = {"name": "up", "scale": {"target": WEB, "replicas": 4}}
CHECK = {"name": "check", "httpCheck": {"url": "http://web.shop.svc/healthz"}}


def retried(obj: incidents.Incident, retry: int, by: str = "alice", **annotations: str) -> incidents.Incident:
    spec: dict[str, Any] = {**obj.spec, "retry": retry}
    return dataclasses.replace(obj, spec=spec, generation=obj.generation + 1,
                               annotations={**obj.annotations, guards.RETRIED_BY_ANNOTATION: by, **annotations})


def failed_incident(cluster: Cluster, *steps: dict[str, Any], **kwargs: Any) -> incidents.Incident:
    cluster.fail_scale = ["Forbidden"]
    obj, _ = run(incident(*steps, **kwargs), cluster)
    assert condition(obj, "Failed") == ("True", "StepFailed")
    return obj


def test_a_failed_incident_runs_again_from_its_failed_step_when_retried() -> None:
    cluster = Cluster()
    obj = failed_incident(cluster, UP, CHECK)
    assert step_state(obj, "check")["state"] == "Skipped"

    obj, _ = run(retried(obj, 1), cluster, now=LATER)

    assert cluster.replicas == 4
    assert [step_state(obj, s)["state"] for s in ("up", "check")] == ["Succeeded", "Succeeded"]
    assert condition(obj, "Resolved") == ("True", "StepsSucceeded")
    assert condition(obj, "Failed") == ("False", "Retried")
    retry_entries = [e["message"] for e in obj.status["timeline"] if e["reason"] == "Retried"]
    assert retry_entries == ["retry 1 requested by alice: running again from step up"]


def test_a_retry_is_acted_on_once_and_a_succeeded_step_is_not_run_again() -> None:
    cluster = Cluster()
    obj = failed_incident(cluster, {"name": "restart", "restart": {"target": WEB}}, UP)
    restarts = cluster.generation
    obj, _ = run(retried(obj, 1), cluster, now=LATER)
    assert condition(obj, "Resolved") == ("True", "StepsSucceeded")
    assert cluster.generation == restarts, "the restart that succeeded is not repeated"
    scales = len([a for a in cluster.acted if type(a).__name__ == "ScaleTo"])
    again, _ = run(obj, cluster, now=LATER + datetime.timedelta(minutes=1))  # the same retry value, seen again
    assert len([a for a in cluster.acted if type(a).__name__ == "ScaleTo"]) == scales
    assert again.status["retried"] == 1


def test_a_retried_step_that_needs_approval_waits_for_a_new_one() -> None:
    cluster = Cluster()
    step = {**UP, "requiresApproval": True}
    given = {guards.APPROVE_ANNOTATION: "up", guards.APPROVED_BY_ANNOTATION: "bob"}
    first = incident(step)
    obj, _ = run(first, cluster)  # waits: an approval at creation would be ignored, so it comes later
    cluster.fail_scale = ["Forbidden"]
    obj, _ = run(dataclasses.replace(obj, annotations=given), cluster, now=T0 + datetime.timedelta(seconds=5))
    assert condition(obj, "Failed") == ("True", "StepFailed")

    obj, _ = run(retried(obj, 1), cluster, now=LATER)
    assert step_state(obj, "up")["state"] == "AwaitingApproval", "bob approved the run that failed, not this one"
    assert cluster.replicas == 2

    again = {guards.APPROVE_ANNOTATION: "all", guards.APPROVED_BY_ANNOTATION: "carol"}
    obj, _ = run(dataclasses.replace(obj, annotations={**obj.annotations, **again}), cluster, now=LATER)
    assert (step_state(obj, "up")["state"], step_state(obj, "up")["approvedBy"]) == ("Succeeded", "carol")


def test_a_retry_of_an_incident_that_has_not_failed_changes_nothing() -> None:
    cluster = Cluster()
    obj, _ = run(incident(UP), cluster)
    assert condition(obj, "Resolved") == ("True", "StepsSucceeded")
    obj, _ = run(retried(obj, 1), cluster, now=LATER)
    assert condition(obj, "Resolved") == ("True", "StepsSucceeded")
    assert obj.status["timeline"][-1]["reason"] == "RetryIgnored"
    assert len([a for a in cluster.acted if type(a).__name__ == "ScaleTo"]) == 1
