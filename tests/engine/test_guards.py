"""Safety guards hold a step back, with a reason a person can act on."""

from __future__ import annotations

import datetime
from typing import Any

from remediator.api.severities import Severity
from remediator.api.steps import Step
from remediator.engine import guards

NOW = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.UTC)
WEB = {"kind": "Deployment", "name": "web"}


def step(**kind: Any) -> Step:
    return Step.model_validate({"name": "mitigate", **kind})


def test_a_rollback_waits_for_approval_until_the_incident_is_annotated() -> None:
    rollback = step(rollback={"target": WEB})
    verdict, approver = guards.approval(rollback, Severity.P1, guards.ApprovalPolicy(), {})
    assert verdict.outcome == guards.Outcome.WAIT and verdict.reason == "AwaitingApproval"
    assert "remediator.dev/approve=mitigate" in verdict.message

    verdict, approver = guards.approval(rollback, Severity.P1, guards.ApprovalPolicy(),
                                        {"remediator.dev/approve": "mitigate",
                                         "remediator.dev/approved-by": "alice@example.com"})
    assert verdict.proceeds and approver == "alice@example.com"
    verdict, approver = guards.approval(rollback, Severity.P1, guards.ApprovalPolicy(),
                                        {"remediator.dev/approve": "all"})
    assert verdict.proceeds and approver == "unknown"


def test_approving_another_step_does_not_approve_this_one() -> None:
    verdict, _ = guards.approval(step(requiresApproval=True, restart={"target": WEB}), Severity.P3,
                                 guards.ApprovalPolicy(), {"remediator.dev/approve": "other-step"})
    assert verdict.outcome == guards.Outcome.WAIT


def test_only_destructive_steps_need_approval_by_policy() -> None:
    policy = guards.ApprovalPolicy(severities=frozenset({Severity.P0}))
    scale_to_zero = step(scale={"target": WEB, "replicas": 0})
    scale_up = step(scale={"target": WEB, "by": 2})
    assert guards.approval(scale_to_zero, Severity.P0, policy, {})[0].outcome == guards.Outcome.WAIT
    assert guards.approval(scale_to_zero, Severity.P2, policy, {})[0].proceeds
    assert guards.approval(scale_up, Severity.P0, policy, {})[0].proceeds


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
