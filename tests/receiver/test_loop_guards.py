"""Loop guards: an alert that keeps coming back does not start remediation after remediation. After
maxRemediations Incidents for a target within the window the next is Escalated (RemediationLoop); after
maxConsecutiveFailures failed ones the next waits for approval; both hold every step for approval."""

from __future__ import annotations

import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from remediator.api.runbooks import RunbookDefaults
from remediator.receiver import loop_guards

from .alerts import alert, notification, runbook_manifest
from .conftest import API, RunningReceiver

NOW = datetime.datetime(2026, 11, 29, 12, tzinfo=datetime.UTC)


def earlier(minutes: int, failed: bool = False) -> dict[str, Any]:
    created = (NOW - datetime.timedelta(minutes=minutes)).isoformat()
    conditions = [{"type": "Failed" if failed else "Resolved", "status": "True"}]
    return {"metadata": {"name": f"i{minutes}", "creationTimestamp": created}, "status": {"conditions": conditions}}


def test_three_incidents_within_the_hour_hold_the_fourth_as_a_remediation_loop() -> None:
    hold = loop_guards.judge([earlier(50), earlier(30), earlier(10)], loop_guards.LoopGuard(), NOW)
    assert hold is not None and (hold.reason, hold.escalate) == ("RemediationLoop", True)
    assert loop_guards.judge([earlier(70), earlier(30), earlier(10)], loop_guards.LoopGuard(), NOW) is None


def test_two_failures_in_a_row_hold_the_next_for_approval() -> None:
    guard = loop_guards.LoopGuard()
    hold = loop_guards.judge([earlier(300, failed=True), earlier(200, failed=True)], guard, NOW)
    assert hold is not None and (hold.reason, hold.escalate) == ("ConsecutiveFailures", False)
    assert loop_guards.judge([earlier(300, failed=True), earlier(200, failed=True), earlier(100)], guard, NOW) is None


def test_a_runbook_sets_its_own_limits() -> None:
    defaults = RunbookDefaults.model_validate({"maxRemediations": 1, "remediationWindow": "10m",
                                               "maxConsecutiveFailures": 5})
    guard = loop_guards.LoopGuard().for_runbook(defaults)
    assert guard == loop_guards.LoopGuard(1, datetime.timedelta(minutes=10), 5)
    assert loop_guards.judge([earlier(5)], guard, NOW) is not None
    assert loop_guards.judge([earlier(15)], guard, NOW) is None


def test_a_held_incident_waits_for_approval_at_every_step_and_says_why_in_its_source() -> None:
    manifest = {"metadata": {"name": "x"}, "spec": {"steps": [{"name": "a", "requiresApproval": False}],
                                                     "source": {"alertname": "A"}}}
    hold = loop_guards.Hold(reason="RemediationLoop", message="3 incidents", escalate=True)
    spec = loop_guards.held(manifest, hold)["spec"]
    assert spec["steps"] == [{"name": "a", "requiresApproval": True}]
    assert spec["source"] == {"alertname": "A",
                              "hold": {"reason": "RemediationLoop", "message": "3 incidents", "escalate": True}}


async def close(receiver: RunningReceiver, incident: dict[str, Any]) -> None:
    incident["status"]["conditions"] = [{"type": "Resolved", "status": "True", "reason": "Verified", "message": "",
                                         "lastTransitionTime": datetime.datetime.now(datetime.UTC).isoformat()}]
    name = incident["metadata"]["name"]
    written = await receiver.sandbox.put(f"{API}/namespaces/default/incidents/{name}/status", json=incident)
    assert written.status_code == 200, written.text


async def test_the_alert_that_keeps_coming_back_escalates_instead_of_remediating_again(
        receiver: RunningReceiver) -> None:
    await receiver.apply_runbook(runbook_manifest(defaults={"maxRemediations": 2}))
    for firing in range(3):
        now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=firing)
        response = await receiver.post(notification(alert(starts_at=now.isoformat(), fingerprint=f"f{firing}")))
        assert response.status_code == 200, response.text
        [newest] = [i for i in await receiver.incidents() if i["spec"]["source"]["fingerprint"] == f"f{firing}"]
        if firing < 2:
            await close(receiver, newest)
    incidents = await receiver.incidents()
    assert len(incidents) == 3
    [third] = [i for i in incidents if i["spec"]["source"]["fingerprint"] == "f2"]
    assert [s["requiresApproval"] for s in third["spec"]["steps"]] == [True]
    # Stored by the create itself: whichever replica reconciles it records Escalated (tests/engine/test_safety.py).
    hold = third["spec"]["source"]["hold"]
    assert (hold["reason"], hold["escalate"]) == ("RemediationLoop", True)
    others = [i for i in incidents if i is not third]
    assert all(s["requiresApproval"] is False for i in others for s in i["spec"]["steps"])
    # What Prometheus sees: one hold, and the target at its limit (for the guard's window).
    text = (await receiver.http.get(f"{receiver.url}/metrics")).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("remediator_loop_guard_holds_total", (("reason", "RemediationLoop"),))] == 1
    assert samples[("remediator_loop_guard_holds_total", (("reason", "ConsecutiveFailures"),))] == 0
    assert samples[("remediator_loop_guard_targets_at_limit", ())] == 1
