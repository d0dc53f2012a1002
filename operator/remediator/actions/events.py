"""Posting timeline entries as Kubernetes Events on the object they are about."""

from __future__ import annotations

import collections
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.actions import retries
from remediator.api.timelines import TimelineEntry
from remediator.typedefs import Logger

COMPONENT = "remediator"
# The events the operator posted lately, as the event recorder keeps them: a repeat raises the count.
RECENT_EVENTS = 4096


class _Recent:
    """(object uid, type, reason, message) → the Event's name and count, least recently used first out."""

    def __init__(self, size: int = RECENT_EVENTS) -> None:
        self.size = size
        self.events: collections.OrderedDict[tuple[str, str, str, str], tuple[str, int]] = collections.OrderedDict()

    def get(self, key: tuple[str, str, str, str]) -> tuple[str, int] | None:
        found = self.events.get(key)
        if found is not None:
            self.events.move_to_end(key)
        return found

    def put(self, key: tuple[str, str, str, str], name: str, count: int) -> None:
        self.events[key] = (name, count)
        self.events.move_to_end(key)
        while len(self.events) > self.size:
            self.events.popitem(last=False)


_recent = _Recent()


def event_for(obj: Mapping[str, Any], entry: TimelineEntry) -> dict[str, Any]:
    """A core/v1 Event mirroring one timeline entry on `obj`."""
    meta = obj["metadata"]
    when = entry.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"[{entry.step}] {entry.message}" if entry.step else entry.message
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta["uid"]},
        "reason": entry.reason,
        "message": message,
        "type": entry.type.value,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
    }


async def post(api: kubernetes.client.ApiClient, obj: Mapping[str, Any], entries: Iterable[TimelineEntry],
               logger: Logger) -> None:
    """Post each entry as an Event. A failure to post is logged, never raised: the timeline
    in the status is the record, events are its mirror."""
    core = kubernetes.client.CoreV1Api(api)
    meta = obj["metadata"]
    for entry in entries:
        body: Any = event_for(obj, entry)
        # The operator's log tells the same story (timeline texts never hold secrets).
        logger.info(f"{obj['kind'].lower()} {meta['namespace']}/{meta['name']}: {body['message']}")
        key = (str(meta["uid"]), body["type"], body["reason"], body["message"])
        try:
            if not await _repeat(core, meta["namespace"], key, body["lastTimestamp"]):
                created: Any = await retries.call_json(core.create_namespaced_event, meta["namespace"], body)
                _recent.put(key, created["metadata"]["name"], 1)
        except ApiException as e:
            logger.warning(f"could not post event {entry.reason}: API error {e.status}")
        except retries.API_ERRORS as e:
            logger.warning(f"could not post event {entry.reason}: {type(e).__name__}")


async def _repeat(core: kubernetes.client.CoreV1Api, namespace: str, key: tuple[str, str, str, str],
                  when: str) -> bool:
    """Count a repeat of a recent event on that Event (count, lastTimestamp); False when there is none."""
    recent = _recent.get(key)
    if recent is None:
        return False
    name, count = recent
    patch = {"count": count + 1, "lastTimestamp": when}
    try:
        await retries.call(core.patch_namespaced_event, name, namespace, patch)
    except ApiException as e:
        if e.status == 404:  # expired or deleted: a new Event then
            return False
        raise
    _recent.put(key, name, count + 1)
    return True
