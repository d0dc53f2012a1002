"""Posting timeline entries as Kubernetes Events on the object they are about."""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import api_requests
from remediator.actions import retries
from remediator.api.timelines import TimelineEntry
from remediator.typedefs import Logger

COMPONENT = "remediator"
# The events the operator posted lately, as the event recorder keeps them: a repeat raises the count.
RECENT_EVENTS = 4096


class _Recent:
    """Per object uid, (type, reason, message) → the Event's name and count; at most `size` events, the
    least recently used object's first out. A deleted object's are forgotten at once: its Events can no
    longer repeat, and a storm's thousands would otherwise stay until pushed out, scattered among the
    storm's small objects (the allocator keeps every arena holding one; docs/benchmarks.md)."""

    def __init__(self, size: int = RECENT_EVENTS) -> None:
        self.size = size
        self.count = 0
        self.objects: collections.OrderedDict[str, dict[tuple[str, str, str], tuple[str, int]]] = \
            collections.OrderedDict()

    def get(self, uid: str, key: tuple[str, str, str]) -> tuple[str, int] | None:
        found = self.objects.get(uid, {}).get(key)
        if found is not None:
            self.objects.move_to_end(uid)
        return found

    def put(self, uid: str, key: tuple[str, str, str], name: str, count: int) -> None:
        events = self.objects.setdefault(uid, {})
        self.count += key not in events
        events[key] = (name, count)
        self.objects.move_to_end(uid)
        while self.count > self.size:
            _, dropped = self.objects.popitem(last=False)
            self.count -= len(dropped)

    def forget(self, uid: str) -> None:
        self.count -= len(self.objects.pop(uid, {}))


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
    """Log each entry and post it as an Event, returning once all are posted. A failure to post is
    logged, never raised: the timeline in the status is the record, events are its mirror."""
    bodies = _logged(obj, entries, logger)
    await _send(api, obj, bodies, logger)


# Events still being posted, by the uid of their object: the last batch, which the next one waits for.
_posting: dict[str, asyncio.Task[None]] = {}


def post_later(api: kubernetes.client.ApiClient, obj: Mapping[str, Any], entries: Iterable[TimelineEntry],
               logger: Logger) -> None:
    """Log each entry now and post it as an Event in the background: the caller's next write does not
    wait for the Events. One object's Events are posted in the order they were handed over.

    An Event not yet posted when the process dies is lost; its timeline entry, already in the status,
    is the record (docs/benchmarks.md). `flush` waits for the ones still in flight.
    """
    bodies = _logged(obj, entries, logger)
    if not bodies:
        return
    uid = str(obj["metadata"]["uid"])
    task = asyncio.get_running_loop().create_task(_send_after(_posting.get(uid), api, obj, bodies, logger))
    _posting[uid] = task
    task.add_done_callback(lambda done: _posting.pop(uid) if _posting.get(uid) is done else None)


async def flush(timeout: float) -> None:
    """Wait (at most `timeout` seconds) until the Events handed to `post_later` are posted."""
    if _posting:
        await asyncio.wait(list(_posting.values()), timeout=timeout)


def pending() -> int:
    """How many objects have Events still being posted in the background."""
    return len(_posting)


async def _send_after(previous: asyncio.Task[None] | None, api: kubernetes.client.ApiClient,
                      obj: Mapping[str, Any], bodies: list[dict[str, Any]], logger: Logger) -> None:
    if previous is not None:
        await asyncio.wait({previous})
    try:
        await _send(api, obj, bodies, logger)
    except Exception as e:  # no one awaits this task: say what stopped it (e.g. leadership lost), then drop it
        logger.warning(f"could not post {len(bodies)} event(s): {type(e).__name__}")


def _logged(obj: Mapping[str, Any], entries: Iterable[TimelineEntry], logger: Logger) -> list[dict[str, Any]]:
    meta = obj["metadata"]
    bodies = [event_for(obj, entry) for entry in entries]
    for body in bodies:
        # The operator's log tells the same story (timeline texts never hold secrets).
        logger.info(f"{obj['kind'].lower()} {meta['namespace']}/{meta['name']}: {body['message']}")
    return bodies


async def _send(api: kubernetes.client.ApiClient, obj: Mapping[str, Any], bodies: list[dict[str, Any]],
                logger: Logger) -> None:
    meta = obj["metadata"]
    for body in bodies:
        uid, key = str(meta["uid"]), (body["type"], body["reason"], body["message"])
        try:
            if not await _repeat(api, meta["namespace"], uid, key, body["lastTimestamp"]):
                created = await retries.request_json(api, "POST", _path(meta["namespace"]), body)
                _recent.put(uid, key, created["metadata"]["name"], 1)
        except ApiException as e:
            logger.warning(f"could not post event {body['reason']}: API error {e.status}")
        except retries.API_ERRORS as e:
            logger.warning(f"could not post event {body['reason']}: {type(e).__name__}")


def _path(namespace: str, *name: str) -> str:
    return api_requests.path("/api/v1/namespaces", namespace, "events", *name)


async def _repeat(api: kubernetes.client.ApiClient, namespace: str, uid: str, key: tuple[str, str, str],
                  when: str) -> bool:
    """Count a repeat of a recent event on that Event (count, lastTimestamp); False when there is none."""
    recent = _recent.get(uid, key)
    if recent is None:
        return False
    name, count = recent
    patch = {"count": count + 1, "lastTimestamp": when}
    try:
        await retries.request_json(api, "PATCH", _path(namespace, name), patch,
                                   content_type=api_requests.STRATEGIC_MERGE_PATCH)
    except ApiException as e:
        if e.status == 404:  # expired or deleted: a new Event then
            return False
        raise
    _recent.put(uid, key, name, count + 1)
    return True


def forget(uid: str) -> None:
    """The object is deleted: its Events will not repeat, and the recent ones of it are forgotten (once
    those still being posted are, too)."""
    _recent.forget(uid)
    if (posting := _posting.get(uid)) is not None:
        posting.add_done_callback(lambda _: _recent.forget(uid))


def remembered() -> set[str]:
    """The uids of the objects whose recent Events are remembered, to count their repeats."""
    return set(_recent.objects)
