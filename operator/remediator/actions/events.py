"""Posting timeline entries as Kubernetes Events on the object they are about."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.actions import retries
from remediator.api.timelines import TimelineEntry
from remediator.typedefs import Logger

COMPONENT = "remediator"


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
        # The operator's log tells the same story (timeline texts never hold secrets).
        logger.info(f"{obj['kind'].lower()} {meta['namespace']}/{meta['name']}: {event_for(obj, entry)['message']}")
        try:
            body: Any = event_for(obj, entry)
            await retries.call(core.create_namespaced_event, obj["metadata"]["namespace"], body)
        except ApiException as e:
            logger.warning(f"could not post event {entry.reason}: API error {e.status}")
        except retries.API_ERRORS as e:
            logger.warning(f"could not post event {entry.reason}: {type(e).__name__}")
