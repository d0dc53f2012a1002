"""Timeline entries become Events; a repeat of the same entry raises the Event's count, as the event
recorder does, instead of adding an Event per repeat."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from typing import Any

import kubernetes.client

from remediator import manifests
from remediator.actions import events
from remediator.api.timelines import EventType, TimelineEntry

API = "remediator.dev/v1alpha1"
T0 = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.UTC)


async def incident_events(api: kubernetes.client.ApiClient, uid: str) -> list[dict[str, Any]]:
    core = kubernetes.client.CoreV1Api(api)
    listed = await asyncio.to_thread(core.list_namespaced_event, "default", _preload_content=False)
    return [e for e in json.loads(listed.data)["items"] if e["involvedObject"].get("uid") == uid]


async def test_a_repeated_timeline_entry_counts_on_one_event(
        client: manifests.Client, kubernetes_client: kubernetes.client.ApiClient) -> None:
    await client.apply({"apiVersion": API, "kind": "Incident",
                                   "metadata": {"name": "busy", "namespace": "default"},
                                   "spec": {"severity": "P2", "summary": "web is overloaded", "steps": [
                                       {"name": "up", "scale": {"target": {"kind": "Deployment", "name": "web"},
                                                                "by": 1}}]}})
    incident = await client.get(API, "Incident", "default", "busy")
    assert incident is not None
    locked = TimelineEntry(time=T0, type=EventType.NORMAL, reason="TargetLocked", message="web is locked", step="up")
    other = TimelineEntry(time=T0, type=EventType.NORMAL, reason="CoolingDown", message="web cools down", step="up")
    later = locked.model_copy(update={"time": T0 + datetime.timedelta(minutes=1)})
    logger = logging.getLogger("test")
    await events.post(kubernetes_client, incident, [locked, other], logger)
    await events.post(kubernetes_client, incident, [later], logger)
    await events.post(kubernetes_client, incident, [later], logger)

    posted = await incident_events(kubernetes_client, incident["metadata"]["uid"])
    assert sorted((e["reason"], e["count"]) for e in posted) == [("CoolingDown", 1), ("TargetLocked", 3)]
    repeated = next(e for e in posted if e["reason"] == "TargetLocked")
    first, last = (datetime.datetime.fromisoformat(repeated[k].replace("Z", "+00:00"))
                   for k in ("firstTimestamp", "lastTimestamp"))
    assert (first, last) == (T0, T0 + datetime.timedelta(minutes=1))


async def test_events_handed_over_for_later_are_posted_in_order_without_the_caller_waiting(
        client: manifests.Client, kubernetes_client: kubernetes.client.ApiClient) -> None:
    await client.apply({"apiVersion": API, "kind": "Incident",
                        "metadata": {"name": "later", "namespace": "default"},
                        "spec": {"severity": "P2", "summary": "web is overloaded", "steps": [
                            {"name": "up", "scale": {"target": {"kind": "Deployment", "name": "web"}, "by": 1}}]}})
    incident = await client.get(API, "Incident", "default", "later")
    assert incident is not None
    uid = incident["metadata"]["uid"]
    locked = TimelineEntry(time=T0, type=EventType.NORMAL, reason="TargetLocked", message="web is locked", step="up")
    later = locked.model_copy(update={"time": T0 + datetime.timedelta(minutes=1)})
    logger = logging.getLogger("test")

    for batch in ([locked], [later], [later]):
        events.post_later(kubernetes_client, incident, batch, logger)
    assert events.pending() == 1, "the caller got on before any Event was posted"
    await events.flush(timeout=10)

    # In the order handed over: the first creates the Event, the repeats count on it.
    posted = await incident_events(kubernetes_client, uid)
    assert [(e["reason"], e["count"]) for e in posted] == [("TargetLocked", 3)]
    assert events.pending() == 0
