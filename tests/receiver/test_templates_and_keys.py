"""An alert's Incident: the summary and steps filled in from its labels (hostile values refused, never
expanded), its severity from the Runbook's table, and a name that only the episode decides."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from remediator.api import alert_templates
from remediator.api.runbooks import RunbookSpec
from remediator.receiver import keys, plans
from remediator.receiver.payloads import Notification

from .alerts import LATER, STARTS_AT, alert, crash_loop_runbook, notification


def runbook(**spec: Any) -> plans.Runbook:
    return plans.Runbook("default", "crash-loop", RunbookSpec.model_validate(crash_loop_runbook(**spec)))


def plan_of(*alerts: dict[str, Any], allowed: frozenset[str] | None = None, **spec: Any) -> plans.Plan:
    return plans.plan(Notification.model_validate(notification(*alerts)), [runbook(**spec)], allowed)


def test_an_alert_becomes_one_incident_with_its_deployment_filled_in() -> None:
    [episode] = plan_of(alert()).episodes
    assert episode.manifest is not None
    spec = episode.manifest["spec"]
    assert spec["summary"] == "web is crash-looping: web keeps restarting"
    assert spec["severity"] == "P1"
    assert spec["steps"] == [{"name": "restart", "requiresApproval": False, "onFailure": "abort", "optional": False,
                              "retries": 0, "retryBackoff": "10s", "verify": False,
                              "restart": {"target": {"kind": "Deployment", "name": "web"}, "mode": "rollout",
                                          "maxUnavailable": 1}}]
    assert spec["source"]["fingerprint"] == "f1"
    assert spec["onResolve"] == "keepRunning"
    assert "annotations" not in episode.manifest["metadata"]  # never pre-approved
    assert episode.manifest["metadata"]["labels"] == {keys.KEY_LABEL: episode.key_hash,
                                                      keys.RUNBOOK_LABEL: "crash-loop"}


def test_the_runbooks_approval_default_holds_for_an_alerts_steps() -> None:
    [episode] = plan_of(alert(), defaults={"requiresApproval": True}).episodes
    assert episode.manifest is not None
    assert [s["requiresApproval"] for s in episode.manifest["spec"]["steps"]] == [True]


@pytest.mark.parametrize("hostile", [
    "{{ labels.namespace }}", "../etc", "web/../../secrets", "a" * 300, "wéb", "", "WEB", "web\nx", "web;rm -rf",
])
def test_a_hostile_label_in_a_step_is_rejected_with_its_reason_and_creates_nothing(hostile: str) -> None:
    result = plan_of(alert(deployment=hostile))
    assert result.episodes == []
    [rejection] = result.rejections
    assert rejection.reason == "InvalidIncident"
    assert rejection.message.startswith("step restart: labels.deployment: ")


def test_template_syntax_in_a_summary_value_is_text_not_a_placeholder() -> None:
    summary = alert_templates.render("{{ labels.a }} and {{ annotations.b }}",
                                     {"a": "{{ labels.secret }}"}, {"b": "{{alertname}}"})
    assert summary == "{{ labels.secret }} and {{alertname}}"


def test_a_long_or_unicode_summary_is_kept_within_bounds() -> None:
    [episode] = plan_of(alert(), incident={"summary": "{{ annotations.description }}", "steps": [
        {"name": "restart", "restart": {"target": {"kind": "Deployment", "name": "web"}}}]}).episodes
    assert episode.manifest is not None
    long_alert = alert()
    long_alert["annotations"]["description"] = "💥" * 3000
    [episode] = plan_of(long_alert, incident={"summary": "{{ annotations.description }}"}, steps=[
        {"name": "restart", "restart": {"target": {"kind": "Deployment", "name": "web"}}}]).episodes
    assert episode.manifest is not None
    assert episode.manifest["spec"]["summary"] == "💥" * 1024


def test_an_empty_summary_falls_back_to_the_alertname() -> None:
    [episode] = plan_of(alert(), incident={"summary": "{{ labels.nothing }}"}, steps=[
        {"name": "restart", "restart": {"target": {"kind": "Deployment", "name": "web"}}}]).episodes
    assert episode.manifest is not None
    assert episode.manifest["spec"]["summary"] == "alert KubePodCrashLooping (Runbook crash-loop)"


@pytest.mark.parametrize("template", ["{{ labels.a.b }}", "{{ labels['a'] }}", "{{ 1 + 1 }}", "{{ secrets.x }}",
                                      "{{ labels.__class__ }}x{{ config }}"])
def test_a_runbook_with_anything_but_the_three_placeholders_is_refused(template: str) -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        RunbookSpec.model_validate(crash_loop_runbook(incident={"summary": template, "steps": [
            {"name": "restart", "restart": {"target": {"kind": "Deployment", "name": "web"}}}]}))


def test_a_runbook_step_that_is_invalid_even_when_filled_in_is_refused() -> None:
    with pytest.raises(ValueError, match="steps\\[0\\]"):
        RunbookSpec.model_validate(crash_loop_runbook(incident={"steps": [
            {"name": "restart", "restart": {"target": {"kind": "Pod", "name": "{{ labels.deployment }}"}}}]}))


@pytest.mark.parametrize(("label", "severity"), [("critical", "P1"), ("warning", "P3"), ("SEV1", "P0"),
                                                  ("page", "P3"), ("", "P3")])
def test_the_severity_comes_from_the_runbooks_table_then_the_label(label: str, severity: str) -> None:
    [episode] = plan_of(alert(severity=label), triggers=[{"alertname": "KubePodCrashLooping"}]).episodes
    assert episode.manifest is not None
    assert episode.manifest["spec"]["severity"] == severity


def test_the_runbooks_default_severity_wins_over_the_label() -> None:
    [episode] = plan_of(alert(severity="SEV1"), triggers=[{"alertname": "KubePodCrashLooping"}],
                        defaults={"severity": "P2"}).episodes
    assert episode.manifest is not None
    assert episode.manifest["spec"]["severity"] == "P2"


def test_the_same_alert_in_any_label_order_and_with_extra_labels_names_the_same_incident() -> None:
    first = alert()
    reordered = alert(pod="web-7d9f-x2", instance="10.0.0.1:8080")
    reordered["labels"] = dict(reversed(list(reordered["labels"].items())))
    [one] = plan_of(first).episodes
    [two] = plan_of(reordered).episodes
    assert (one.name, one.key_hash) == (two.name, two.key_hash)
    assert one.name.startswith("crash-loop-") and len(one.name) == len("crash-loop-") + 16


def test_a_new_firing_or_another_deployment_names_another_incident() -> None:
    [first] = plan_of(alert()).episodes
    [later] = plan_of(alert(starts_at=LATER)).episodes
    [other] = plan_of(alert(deployment="api")).episodes
    assert later.key_hash == first.key_hash and later.name != first.name
    assert other.key_hash != first.key_hash


def test_alerts_of_one_key_in_one_notification_are_one_episode_named_by_the_first_firing() -> None:
    result = plan_of(alert(starts_at=LATER, fingerprint="f2"), alert(fingerprint="f1"),
                     alert(status="resolved", starts_at="2026-11-29T09:00:00Z", fingerprint="f0"))
    [episode] = result.episodes
    assert episode.name == keys.incident_name("crash-loop", episode.key_hash,
                                              datetime.datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=datetime.UTC))
    assert sorted(a.fingerprint for a in episode.alerts) == ["f0", "f1", "f2"]


def test_only_resolved_alerts_create_nothing() -> None:
    [episode] = plan_of(alert(status="resolved")).episodes
    assert episode.manifest is None


def test_an_alert_of_another_namespace_is_not_this_runbooks() -> None:
    assert plan_of(alert(namespace="payments")).episodes == []


def test_an_alert_without_a_namespace_goes_to_the_runbooks_namespace() -> None:
    bare = alert()
    del bare["labels"]["namespace"]
    [episode] = plan_of(bare).episodes
    assert episode.namespace == "default"


def test_the_operators_namespace_allow_list_applies() -> None:
    result = plan_of(alert(), allowed=frozenset({"payments"}))
    assert result.episodes == []
    assert [r.reason for r in result.rejections] == ["NamespaceNotAllowed"]


def test_a_very_long_runbook_name_still_gives_a_valid_incident_name() -> None:
    name = keys.incident_name("r" * 199 + "." + "x" * 53, "k", datetime.datetime.now(datetime.UTC))
    assert len(name) <= 253 and ".-" not in name


def stored(episode: plans.Episode, *, closed_at: str | None = None, alerts: list[dict[str, Any]] | None = None,
           name: str | None = None, created: str = "2026-11-29T10:00:01Z") -> dict[str, Any]:
    """The episode's Incident as the API server would list it."""
    conditions = [] if closed_at is None else [
        {"type": "Resolved", "status": "True", "reason": "Verified", "lastTransitionTime": closed_at}]
    return {"metadata": {"name": name or episode.name, "creationTimestamp": created},
            "status": {"conditions": conditions, "alerts": alerts or []}}


def recorded(starts_at: str, fingerprint: str = "f1") -> dict[str, Any]:
    return {"fingerprint": fingerprint, "startsAt": starts_at, "status": "firing"}


def test_an_open_incident_of_the_key_takes_the_alerts() -> None:
    [episode] = plan_of(alert(starts_at=LATER, fingerprint="f2")).episodes
    incident = stored(episode, name="crash-loop-older")
    assert plans.place(episode, [incident]) == plans.Placement(existing=incident)


def test_the_first_alert_of_a_key_creates_its_incident() -> None:
    [episode] = plan_of(alert()).episodes
    assert plans.place(episode, []) == plans.Placement(create=episode.manifest)


def test_an_alert_still_firing_after_its_incident_closed_creates_nothing() -> None:
    [episode] = plan_of(alert()).episodes
    closed = stored(episode, closed_at="2026-11-29T10:30:00Z", alerts=[recorded(STARTS_AT)])
    assert plans.place(episode, [closed]) == plans.Placement(existing=closed)


def test_a_new_firing_beside_the_old_alert_after_the_close_opens_a_new_incident() -> None:
    [episode] = plan_of(alert(), alert(starts_at=LATER, fingerprint="f2")).episodes
    closed = stored(episode, closed_at="2026-11-29T10:30:00Z", alerts=[recorded(STARTS_AT)])
    placement = plans.place(episode, [closed])
    assert placement.existing is None and placement.create is not None
    assert placement.create["metadata"]["name"] == keys.incident_name(
        "crash-loop", episode.key_hash, datetime.datetime(2026, 11, 29, 11, tzinfo=datetime.UTC))
    assert placement.create["spec"]["source"]["fingerprint"] == "f2"


def test_an_alert_that_started_before_the_close_but_arrived_late_joins_the_closed_incident() -> None:
    [episode] = plan_of(alert(starts_at="2026-11-29T10:10:00Z", fingerprint="f2")).episodes
    closed = stored(episode, name="crash-loop-first", closed_at="2026-11-29T10:30:00Z",
                    alerts=[recorded(STARTS_AT)])
    assert plans.place(episode, [closed]) == plans.Placement(existing=closed)


HEALTH_URL = "http://{{ labels.service }}.{{ labels.namespace }}.svc:8080/healthz/{{ labels.version }}"


def health_check_plan(**labels: str) -> plans.Plan:
    return plan_of(alert(**labels), incident={"steps": [
        {"name": "probe", "httpCheck": {"url": HEALTH_URL}}]})


def test_a_label_in_a_urls_host_fills_one_dns_label_so_the_host_keeps_the_runbooks_shape() -> None:
    [episode] = health_check_plan(service="web", version="v1.2").episodes
    assert episode.manifest is not None
    [step] = episode.manifest["spec"]["steps"]
    assert step["httpCheck"]["url"] == "http://web.default.svc:8080/healthz/v1.2"


@pytest.mark.parametrize("service", ["db.other-ns", "169.254.169.254", "metadata.google.internal", "web:99"])
def test_a_dotted_label_cannot_move_a_urls_host_elsewhere(service: str) -> None:
    result = health_check_plan(service=service, version="v1")
    assert result.episodes == []
    [rejection] = result.rejections
    assert rejection.reason == "InvalidIncident"
    assert rejection.message.startswith("step probe: labels.service: "), rejection.message
