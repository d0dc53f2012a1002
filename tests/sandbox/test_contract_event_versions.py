"""Contract: events.k8s.io/v1 serves the same Events as core/v1, converted field by field.

kube-apiserver stores one Event: what is written through one API is read through the other
(regarding ↔ involvedObject, note ↔ message, reportingController ↔ reportingComponent,
deprecated* ↔ source/firstTimestamp/lastTimestamp/count), watches included. Creating through
events.k8s.io/v1 is validated strictly (eventTime, type, no deprecated fields).
https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/
"""

from __future__ import annotations

import asyncio
import json
import pathlib

import httpx
from tests.sandbox.test_kubectl import Kubectl

from .support import created

CORE = "/api/v1/namespaces/default/events"
EVENTS_V1 = "/apis/events.k8s.io/v1/namespaces/default/events"
NEW_STYLE = {
    "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "web.scaled"},
    "eventTime": "2026-07-01T12:00:00.000000Z", "reportingController": "example.com/scaler",
    "reportingInstance": "scaler-1", "action": "Scale", "reason": "Scaled", "type": "Normal",
    "regarding": {"kind": "Deployment", "namespace": "default", "name": "web", "apiVersion": "apps/v1"},
    "note": "scaled web to 3",
}


async def test_an_event_created_through_events_v1_is_read_through_core_v1(api: httpx.AsyncClient) -> None:
    made = await created(api, EVENTS_V1, NEW_STYLE)
    assert made["apiVersion"] == "events.k8s.io/v1"
    assert made["note"] == "scaled web to 3" and made["regarding"]["name"] == "web"
    core = (await api.get(f"{CORE}/web.scaled")).json()
    assert core["apiVersion"] == "v1"
    assert core["message"] == "scaled web to 3"
    assert core["involvedObject"] == NEW_STYLE["regarding"]
    assert core["reportingComponent"] == "example.com/scaler"
    assert core["metadata"]["uid"] == made["metadata"]["uid"]


async def test_a_core_event_is_read_through_events_v1_with_its_deprecated_fields(api: httpx.AsyncClient) -> None:
    await created(api, CORE, {"metadata": {"name": "web.pulled"}, "reason": "Pulled", "message": "pulled",
                              "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"},
                              "source": {"component": "kubelet"}, "count": 2, "type": "Normal",
                              "firstTimestamp": "2026-07-01T12:00:00Z", "lastTimestamp": "2026-07-01T12:01:00Z"})
    event = (await api.get(f"{EVENTS_V1}/web.pulled")).json()
    assert {k: v for k, v in event.items() if k != "metadata"} == {
        "kind": "Event", "apiVersion": "events.k8s.io/v1", "eventTime": None, "reason": "Pulled",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "web"}, "note": "pulled", "type": "Normal",
        "deprecatedSource": {"component": "kubelet"}, "deprecatedFirstTimestamp": "2026-07-01T12:00:00Z",
        "deprecatedLastTimestamp": "2026-07-01T12:01:00Z", "deprecatedCount": 2}
    listed = (await api.get(EVENTS_V1)).json()
    assert listed["kind"] == "EventList" and listed["apiVersion"] == "events.k8s.io/v1"
    assert [item["note"] for item in listed["items"]] == ["pulled"]


async def test_a_watch_on_events_v1_sees_core_writes_in_its_own_form(api: httpx.AsyncClient) -> None:
    async with api.stream("GET", EVENTS_V1, params={"watch": "true"}) as stream:
        await created(api, CORE, {"metadata": {"name": "web.started"}, "reason": "Started", "message": "up",
                                  "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"}})
        line = await asyncio.wait_for(anext(stream.aiter_lines()), 5)
    event = json.loads(line)
    assert event["type"] == "ADDED"
    assert event["object"]["apiVersion"] == "events.k8s.io/v1"
    assert event["object"]["note"] == "up"


async def test_events_v1_refuses_what_core_v1_tolerates(api: httpx.AsyncClient) -> None:
    """Through events.k8s.io/v1, eventTime is required, the type must be Normal or Warning, and the
    deprecated fields must be unset (ValidateEventCreate's strict part)."""
    body = {**NEW_STYLE, "eventTime": None, "type": "Odd", "deprecatedCount": 3}
    response = await api.post(EVENTS_V1, json=body)
    assert response.status_code == 422
    assert response.json()["message"] == (
        'Event.events.k8s.io "web.scaled" is invalid: [eventTime: Required value, '
        "type: Invalid value: \"\": has invalid value: Odd, count: Invalid value: \"\": needs to be unset]")


async def test_a_patch_through_events_v1_changes_the_stored_event(api: httpx.AsyncClient) -> None:
    await created(api, EVENTS_V1, NEW_STYLE)
    patched = await api.patch(f"{EVENTS_V1}/web.scaled", json={"series": {
        "count": 2, "lastObservedTime": "2026-07-01T12:05:00.000000Z"}},
        headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["series"]["count"] == 2
    assert (await api.get(f"{CORE}/web.scaled")).json()["series"]["count"] == 2


async def test_kubectl_reads_events_through_either_api(api: httpx.AsyncClient, kubeconfig: pathlib.Path,
                                                       tmp_path: pathlib.Path) -> None:
    """`kubectl get events` stays on core/v1 (the preferred group), and the events.k8s.io form is one
    qualified name away."""
    await created(api, EVENTS_V1, NEW_STYLE)
    kubectl = Kubectl(kubeconfig, tmp_path)
    core = json.loads((await kubectl("get", "events", "-o", "json")).stdout)
    assert [item["message"] for item in core["items"]] == ["scaled web to 3"]
    new = json.loads((await kubectl("get", "events.v1.events.k8s.io", "-o", "json")).stdout)
    assert [item["note"] for item in new["items"]] == ["scaled web to 3"]
