"""Alertmanager's POSTs against the sandbox: every answer the receiver gives, exactly one Incident per
alert episode whatever is resent, and nothing at all created by a request it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.aio import client as aio
from prometheus_client.parser import text_string_to_metric_families
from tests.local_servers import serving

from remediator.receiver import incident_writes, server, tokens

from .alerts import LATER, alert, notification, runbook_manifest
from .conftest import RunningReceiver


async def test_an_alert_creates_one_incident_with_the_runbooks_steps_for_its_deployment(
        receiver: RunningReceiver) -> None:
    await receiver.apply_runbook(runbook_manifest())
    response = await receiver.post(notification(alert()))
    assert response.status_code == 200, response.text
    [incident] = await receiver.incidents()
    assert response.json()["incidents"] == [{"namespace": "default", "name": incident["metadata"]["name"],
                                             "created": True}]
    assert incident["spec"]["steps"][0]["restart"]["target"] == {"kind": "Deployment", "name": "web"}
    assert incident["spec"]["severity"] == "P1"
    assert [a["fingerprint"] for a in incident["status"]["alerts"]] == ["f1"]
    # Requested by the receiver's own identity (the chart's admission policy requires the creator's name),
    # and never approved.
    assert incident["metadata"]["annotations"] == {"remediator.dev/requested-by": "sandbox-admin"}


async def test_resends_ha_duplicates_and_more_alerts_of_the_key_still_give_one_incident(
        receiver: RunningReceiver) -> None:
    await receiver.apply_runbook(runbook_manifest())
    for _ in range(3):
        assert (await receiver.post(notification(alert()))).status_code == 200
    assert (await receiver.post(notification(alert(), alert(fingerprint="f2", starts_at=LATER)))).status_code == 200
    [incident] = await receiver.incidents()
    assert [a["fingerprint"] for a in incident["status"]["alerts"]] == ["f1", "f2"]
    assert [e["reason"] for e in incident["status"]["timeline"] if e["reason"] == "AlertReceived"] == [
        "AlertReceived", "AlertReceived"]
    # Each write that added an alert is mirrored as one Event on the Incident; the resends post none.
    listed = (await receiver.sandbox.get("/api/v1/namespaces/default/events")).json()["items"]
    posted = [e for e in listed if e["involvedObject"]["name"] == incident["metadata"]["name"]]
    assert [(e["reason"], e["involvedObject"]["uid"], e["source"]["component"]) for e in posted] == [
        ("AlertReceived", incident["metadata"]["uid"], "remediator-receiver")] * 2
    assert sorted(e["message"].split(" ")[1] for e in posted) == ["f1", "f2"]


async def test_a_resolve_sets_alert_resolved_and_a_new_firing_after_close_opens_a_new_incident(
        receiver: RunningReceiver) -> None:
    await receiver.apply_runbook(runbook_manifest())
    await receiver.post(notification(alert()))
    assert (await receiver.post(notification(alert(status="resolved")))).status_code == 200
    [incident] = await receiver.incidents()
    [condition] = [c for c in incident["status"]["conditions"] if c["type"] == "AlertResolved"]
    assert condition["status"] == "True"
    # The operator closes it; the same alert sent again creates nothing, a new firing a new Incident.
    incident["status"]["conditions"].append({"type": "Resolved", "status": "True", "reason": "Verified",
                                             "message": "", "lastTransitionTime": "2026-11-29T10:30:00Z"})
    name = incident["metadata"]["name"]
    written = await receiver.sandbox.put(f"/apis/remediator.dev/v1alpha1/namespaces/default/incidents/{name}/status",
                                         json=incident)
    assert written.status_code == 200, written.text
    await receiver.post(notification(alert()))
    assert [i["metadata"]["name"] for i in await receiver.incidents()] == [name]
    await receiver.post(notification(alert(starts_at=LATER)))
    assert len(await receiver.incidents()) == 2


async def test_no_matching_runbook_answers_200_and_says_so(receiver: RunningReceiver) -> None:
    await receiver.apply_runbook(runbook_manifest())
    response = await receiver.post(notification(alert(alertname="DiskFull")))
    assert response.status_code == 200
    assert response.json()["result"] == "no runbook matched"
    assert await receiver.incidents() == []


# A name at the limit (253) whose cut for the Event's name ends in '-': the Event must still be valid.
LONGEST = "r" * 199 + "-" + "x" * 53


@pytest.mark.parametrize("runbook", ["crash-loop", LONGEST], ids=["short", "253 characters"])
async def test_a_hostile_label_is_rejected_with_its_reason_and_nothing_is_created(
        receiver: RunningReceiver, runbook: str) -> None:
    await receiver.apply_runbook(runbook_manifest(name=runbook))
    response = await receiver.post(notification(alert(deployment="../../kube-system")))
    assert response.status_code == 200
    [rejected] = response.json()["rejected"]
    assert rejected["reason"] == "InvalidIncident"
    assert "labels.deployment" in rejected["message"]
    assert await receiver.incidents() == []
    events = (await receiver.sandbox.get("/api/v1/namespaces/default/events")).json()["items"]
    assert [e["reason"] for e in events if e["involvedObject"]["name"] == runbook] == ["AlertRejected"]


BAD_REQUESTS: dict[str, tuple[Any, dict[str, Any], int]] = {
    "no token": (notification(alert()), {"token": None}, 401),
    "a wrong token": (notification(alert()), {"token": "s3cret-webhook-tokem"}, 401),
    "a basic auth header": (notification(alert()), {"token": None, "headers": {"Authorization": "Basic eDp5"}}, 401),
    "a token that is not UTF-8": (notification(alert()), {"token": None,
                                                          "headers": {"Authorization": b"Bearer \xff\xfe"}}, 401),
    "invalid JSON": (b"{not json", {}, 400),
    "a JSON array": ([], {}, 400),
    "version 3": ({**notification(alert()), "version": "3"}, {}, 400),
    "an alert without startsAt": (notification({k: v for k, v in alert().items() if k != "startsAt"}), {}, 400),
    "a label that is not a string": (notification({**alert(), "labels": {"alertname": 1}}), {}, 400),
    "over 1 MiB": (notification(*[alert(fingerprint=str(i), pad="x" * 1000) for i in range(1100)]), {}, 413),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_a_refused_request_creates_nothing(receiver: RunningReceiver, case: str) -> None:
    await receiver.apply_runbook(runbook_manifest())
    body, options, status = BAD_REQUESTS[case]
    response = await receiver.post(body, **options)
    assert response.status_code == status, response.text
    assert await receiver.incidents() == []
    if status == 400:
        assert response.json()["error"] in ("invalid payload", "invalid JSON: JSONDecodeError")


async def test_an_invalid_payload_is_answered_with_the_reason(receiver: RunningReceiver) -> None:
    response = await receiver.post({**notification(alert()), "alerts": [{"status": "burning"}]})
    assert response.status_code == 400
    reasons = response.json()["reasons"]
    assert "body.alerts[0].status: Input should be 'firing' or 'resolved'" in reasons
    assert any(r.startswith("body.alerts[0].startsAt") for r in reasons)


async def test_unknown_fields_are_ignored(receiver: RunningReceiver) -> None:
    await receiver.apply_runbook(runbook_manifest())
    body = {**notification({**alert(), "silencedBy": []}), "futureField": {"x": 1}}
    assert (await receiver.post(json.dumps(body))).status_code == 200
    assert len(await receiver.incidents()) == 1


async def test_a_new_firing_arriving_with_the_old_alert_after_the_close_opens_a_new_incident(
        receiver: RunningReceiver) -> None:
    """Alertmanager sends the whole group: the old alert, still firing, and a new one of the same key."""
    await receiver.apply_runbook(runbook_manifest())
    await receiver.post(notification(alert()))
    [incident] = await receiver.incidents()
    incident["status"]["conditions"] = [{"type": "Resolved", "status": "True", "reason": "Verified",
                                         "message": "", "lastTransitionTime": "2026-11-29T10:30:00Z"}]
    name = incident["metadata"]["name"]
    written = await receiver.sandbox.put(f"/apis/remediator.dev/v1alpha1/namespaces/default/incidents/{name}/status",
                                         json=incident)
    assert written.status_code == 200, written.text
    assert (await receiver.post(notification(alert(), alert(fingerprint="f2", starts_at=LATER)))).status_code == 200
    incidents = {i["metadata"]["name"]: i for i in await receiver.incidents()}
    assert len(incidents) == 2
    [new] = [i for n, i in incidents.items() if n != name]
    assert new["spec"]["source"]["fingerprint"] == "f2"


@pytest.mark.parametrize("served_namespaces", [("default",), ("def*",), ()])
async def test_only_the_runbooks_of_the_served_namespaces_match(
        receiver: RunningReceiver, served_namespaces: tuple[str, ...]) -> None:
    namespace = await receiver.sandbox.post("/api/v1/namespaces", json={"metadata": {"name": "payments"}})
    assert namespace.status_code == 201, namespace.text
    await receiver.apply_runbook(runbook_manifest(namespace="payments"))
    response = await receiver.post(notification(alert(namespace="payments")))
    assert response.status_code == 200
    created = await receiver.incidents("payments")
    assert len(created) == (0 if served_namespaces else 1)


async def test_metrics_count_what_the_receiver_did(receiver: RunningReceiver) -> None:
    await receiver.apply_runbook(runbook_manifest())
    await receiver.post(notification(alert()))
    await receiver.post(notification(alert()))  # a resend
    await receiver.post(notification(alert(alertname="DiskFull")))
    await receiver.post(notification(alert(deployment="../x", fingerprint="f9")))
    await receiver.post(b"{", token="wrong")
    text = (await receiver.http.get(f"{receiver.url}/metrics")).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("remediator_alerts_received_total", ())] == 4
    assert samples[("remediator_alerts_matched_total", ())] == 3
    assert samples[("remediator_alerts_unmatched_total", ())] == 1
    assert samples[("remediator_alerts_deduplicated_total", ())] == 1
    assert samples[("remediator_alerts_rejected_total", (("reason", "InvalidIncident"),))] == 1
    assert samples[("remediator_incidents_created_total", (("runbook", "crash-loop"), ("severity", "P1")))] == 1
    assert samples[("remediator_receiver_request_duration_seconds_count", (("code", "200"),))] == 4
    assert samples[("remediator_receiver_request_duration_seconds_count", (("code", "401"),))] == 1


async def test_the_token_may_come_from_a_secret(receiver: RunningReceiver) -> None:


    secret = {"metadata": {"name": "alertmanager-webhook", "namespace": "default"},
              "stringData": {"token": "from-the-secret"}}
    assert (await receiver.sandbox.post("/api/v1/namespaces/default/secrets", json=secret)).status_code == 201
    await receiver.apply_runbook(runbook_manifest())
    async with aio.ApiClient(aio.Configuration(host=str(receiver.sandbox.base_url).rstrip("/"))) as api:
        handler = server.Receiver(incident_writes.IncidentWrites(api),
                                  tokens.SecretToken(api, "default", "alertmanager-webhook"), None)
        async with serving(server.build_app(handler)) as url:
            other = RunningReceiver(url, receiver.http, receiver.sandbox)
            assert (await other.post(notification(alert()), token="from-the-secret")).status_code == 200
            assert (await other.post(notification(alert()))).status_code == 401
