"""Safety guards hold a step back, with a reason a person can act on."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from remediator.api.severities import Severity
from remediator.api.steps import Step
from remediator.engine import guards, plans

NOW = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.UTC)
WEB = {"kind": "Deployment", "name": "web"}


def step(**kind: Any) -> Step:
    return Step.model_validate({"name": "mitigate", **kind})


def scale_plan(scale: Step, replicas: int = 3) -> plans.Plan:
    return plans.scale(scale, {"spec": {"replicas": replicas}}, "Deployment", "web", {}, max_replicas=1000)


def test_a_rollback_waits_for_approval_until_the_incident_is_annotated() -> None:
    rollback = step(rollback={"target": WEB})
    plan = plans.rollback(rollback, "inc-mitigate")
    verdict, approver = guards.approval(rollback, plan, Severity.P1, guards.ApprovalPolicy(), {})
    assert verdict.outcome == guards.Outcome.WAIT and verdict.reason == "AwaitingApproval"
    assert "remediator.dev/approve=mitigate" in verdict.message
    assert "roll back deployment/web to the previous revision" in verdict.message

    verdict, approver = guards.approval(rollback, plan, Severity.P1, guards.ApprovalPolicy(),
                                        {"remediator.dev/approve": "mitigate",
                                         "remediator.dev/approved-by": "alice@example.com"})
    assert verdict.proceeds and approver == "alice@example.com"
    verdict, approver = guards.approval(rollback, plan, Severity.P1, guards.ApprovalPolicy(),
                                        {"remediator.dev/approve": "all"})
    assert verdict.proceeds and approver == "unknown"


def test_approving_another_step_does_not_approve_this_one() -> None:
    restart = step(requiresApproval=True, restart={"target": WEB})
    verdict, _ = guards.approval(restart, plans.rollout_restart("Deployment", "web", "now"), Severity.P3,
                                 guards.ApprovalPolicy(), {"remediator.dev/approve": "other-step"})
    assert verdict.outcome == guards.Outcome.WAIT


@pytest.mark.parametrize(("change", "waits"), [
    ({"replicas": 0}, True),
    ({"by": -100}, True),
    ({"by": -3}, True),
    ({"by": -2}, False),
    ({"factor": 0.5, "maxReplicas": 0}, True),
    ({"factor": 2, "maxReplicas": 0}, True),
    ({"by": -5, "minReplicas": 1}, False),
    ({"by": 2}, False),
], ids=lambda v: str(v))
def test_a_scale_to_zero_waits_for_approval_however_the_step_spells_it(change: dict[str, Any], waits: bool) -> None:
    policy = guards.ApprovalPolicy(severities=frozenset({Severity.P0}))
    scale = step(scale={"target": WEB, **change})
    assert guards.approval(scale, scale_plan(scale), Severity.P0, policy, {})[0].proceeds is not waits
    assert guards.approval(scale, scale_plan(scale), Severity.P2, policy, {})[0].proceeds, "not at this severity"


def test_a_workload_already_at_zero_is_not_stopped_by_scaling_it_to_zero() -> None:
    scale = step(scale={"target": WEB, "replicas": 0})
    assert not scale_plan(scale, replicas=0).destructive


def test_deleting_every_pod_at_once_is_destructive_and_one_at_a_time_is_not() -> None:
    pods = [{"uid": u, "terminating": False} for u in "abc"]
    def plan(max_unavailable: int | str) -> plans.Plan:
        restart = step(restart={"target": WEB, "mode": "deletePods", "selector": {"matchLabels": {"app": "web"}},
                                "maxUnavailable": max_unavailable})
        return plans.delete_pods(restart, pods, "Deployment", "web", "app=web", {})
    assert plan(3).destructive and plan("100%").destructive and plan(5).destructive
    assert not plan(1).destructive and not plan("50%").destructive


def test_a_cooldown_stamp_never_holds_longer_than_the_policy_allows() -> None:
    """A hand-written stamp dated 9999 from an incident that never existed."""
    for forged in ("9999-12-31T00:00:00Z nobody/forged", "9999-12-31T00:00:00 nobody/forged"):
        verdict = guards.cooldown("scale", "default/second", {guards.cooldown_annotation("scale"): forged},
                                  "deployment/web", NOW, longest=datetime.timedelta(minutes=30))
        assert verdict.retry_at == NOW + datetime.timedelta(minutes=30)


def test_targets_outside_the_allow_lists_are_refused() -> None:
    assert guards.allowed("shop", "Deployment", {"shop"}, {"Deployment"}).proceeds
    refused = guards.allowed("kube-system", "Deployment", {"shop"}, None)
    assert (refused.outcome, refused.reason) == (guards.Outcome.REFUSE, "NamespaceNotAllowed")
    refused = guards.allowed("shop", "StatefulSet", None, {"Deployment"})
    assert (refused.outcome, refused.reason) == (guards.Outcome.REFUSE, "KindNotAllowed")


def test_a_second_incident_waits_while_the_first_holds_the_target_lock() -> None:
    later = NOW + datetime.timedelta(seconds=5)
    held = {"remediator.dev/lock": "default/first"}
    assert guards.lock("default/first", held, "deployment/web", later).proceeds
    verdict = guards.lock("default/second", held, "deployment/web", later)
    assert (verdict.reason, verdict.retry_at) == ("TargetLocked", later)
    assert "default/first" in verdict.message
    assert guards.lock("default/second", {}, "deployment/web", later).proceeds


def test_no_second_rollback_of_a_deployment_inside_the_cooldown() -> None:
    until = NOW + datetime.timedelta(minutes=10)
    stamped = {guards.cooldown_annotation("rollback"): guards.format_cooldown(until, "default/first")}
    verdict = guards.cooldown("rollback", "default/second", stamped, "deployment/web", NOW)
    assert (verdict.reason, verdict.retry_at) == ("CoolingDown", until)
    assert guards.cooldown("rollback", "default/first", stamped, "deployment/web", NOW).proceeds
    assert guards.cooldown("scale", "default/second", stamped, "deployment/web", NOW).proceeds
    assert guards.cooldown("rollback", "default/second", stamped, "deployment/web", until).proceeds


def test_the_rate_limit_trips_in_an_alert_storm_and_reopens_when_the_window_passes() -> None:
    limit = guards.RateLimit(actions=3)
    recent = [NOW - datetime.timedelta(seconds=s) for s in (50, 20, 10)]
    verdict = guards.rate_limit(limit, recent, NOW)
    assert (verdict.reason, verdict.retry_at) == ("RateLimited", NOW + datetime.timedelta(seconds=10))
    assert guards.rate_limit(limit, recent[1:], NOW).proceeds
    assert guards.rate_limit(None, recent, NOW).proceeds


def test_the_requester_cannot_approve_their_own_destructive_step_unless_the_policy_allows_it() -> None:
    rollback = step(rollback={"target": WEB})
    plan = plans.rollback(rollback, "inc-mitigate")
    own = {"remediator.dev/requested-by": "bob", "remediator.dev/approve": "all", "remediator.dev/approved-by": "bob"}
    verdict, _ = guards.approval(rollback, plan, Severity.P1, guards.ApprovalPolicy(), own)
    assert verdict.outcome == guards.Outcome.WAIT and "bob requested this incident and cannot approve it" in \
        verdict.message
    verdict, approver = guards.approval(rollback, plan, Severity.P1, guards.ApprovalPolicy(self_approval=True), own)
    assert verdict.proceeds and approver == "bob"
    verdict, approver = guards.approval(rollback, plan, Severity.P1, guards.ApprovalPolicy(),
                                        {**own, "remediator.dev/approved-by": "alice"})
    assert verdict.proceeds and approver == "alice"
