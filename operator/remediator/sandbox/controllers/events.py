"""core/v1 Events, recorded the way client-go's event recorder records them.

Repeats of the same event (same object, reason, message, type and source) are folded into one
Event whose `count` grows and whose `lastTimestamp` moves, as the recorder's correlator does.
"""

from __future__ import annotations

import collections
import copy
import time
from collections.abc import Mapping
from typing import Any

from remediator.sandbox import errors, store

# (namespace, involved uid, its fieldPath, component, type, reason, message) → the Event's name: the
# correlator's key (getEventKey), so one container's events are not folded into another's.
EventKey = tuple[str, str, str, str, str, str, str]
# client-go's correlator remembers this many recent events (an LRU cache).
REMEMBERED_EVENTS = 4096


def event_body(
    involved: Mapping[str, Any],
    reason: str,
    message: str,
    *,
    name: str,
    component: str,
    stamp: str,
    event_type: str = "Normal",
    host: str | None = None,
    field_path: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event about `involved`, as written by a controller or kubelet."""
    meta = involved["metadata"]
    involved_ref: dict[str, Any] = {
        "apiVersion": involved.get("apiVersion", ""),
        "kind": involved.get("kind", ""),
        "name": meta["name"],
        "namespace": meta.get("namespace", "default"),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        involved_ref["fieldPath"] = field_path
    source: dict[str, Any] = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": involved_ref["namespace"]},
        "involvedObject": involved_ref,
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": source,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }


class EventRecorder:
    """Writes Events into the store; does nothing when switched off."""

    def __init__(self, object_store: store.ObjectStore, enabled: bool = True) -> None:
        self.store = object_store
        self.enabled = enabled
        self._events = object_store.resource_type("", "v1", "events")
        self._recorded: collections.OrderedDict[EventKey, str] = collections.OrderedDict()
        self._last_nanos = 0

    def record(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        *,
        component: str,
        event_type: str = "Normal",
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        """Record an event about an object; best effort (a failed write is dropped, as in client-go)."""
        if not self.enabled:
            return
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        stamp = store.format_time(self.store.clock())
        key = (namespace, meta.get("uid", ""), field_path or "", component, event_type, reason, message)
        try:
            if self._bump(key, namespace, stamp):
                return
            body = event_body(involved, reason, message, name=f"{meta['name']}.{self._unique_hex()}",
                              component=component, stamp=stamp, event_type=event_type, host=host,
                              field_path=field_path)
            created = self.store.create(self._events, body, namespace)
        except errors.ApiError:
            return
        self._recorded[key] = created["metadata"]["name"]
        if len(self._recorded) > REMEMBERED_EVENTS:
            self._recorded.popitem(last=False)

    def _bump(self, key: EventKey, namespace: str, stamp: str) -> bool:
        """Count a repeat into the Event recorded before; False when there is none any more."""
        name = self._recorded.get(key)
        if name is None:
            return False
        self._recorded.move_to_end(key)
        existing = self.store.find(self._events, namespace, name)
        if existing is None:
            del self._recorded[key]
            return False
        repeated = copy.deepcopy(existing)
        repeated["count"] = int(existing.get("count") or 1) + 1
        repeated["lastTimestamp"] = stamp
        self.store.replace(self._events, namespace, name, repeated)
        return True

    def _unique_hex(self) -> str:
        # client-go names events "<object>.<UnixNano in hex>"; keep them unique within a nanosecond.
        self._last_nanos = max(self._last_nanos + 1, time.time_ns())
        return f"{self._last_nanos:x}"
