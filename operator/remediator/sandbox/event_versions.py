"""events.k8s.io/v1 Events as a view of the core/v1 Events the store holds.

kube-apiserver stores one Event and serves it in both APIs, converting field by field
(k8s.io/kubernetes pkg/apis/events/v1 conversion): regarding ↔ involvedObject, note ↔ message,
reportingController ↔ reportingComponent, deprecatedSource/FirstTimestamp/LastTimestamp/Count ↔
source/firstTimestamp/lastTimestamp/count; the rest keep their names.
https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.sandbox import field_errors

API_VERSION = "events.k8s.io/v1"
# events.k8s.io/v1 name → core/v1 name, in events.k8s.io/v1's field order.
RENAMED = {
    "eventTime": "eventTime",
    "series": "series",
    "reportingController": "reportingComponent",
    "reportingInstance": "reportingInstance",
    "action": "action",
    "reason": "reason",
    "regarding": "involvedObject",
    "related": "related",
    "note": "message",
    "type": "type",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
# What encoding/json prints for an events.k8s.io/v1 field the core Event leaves empty.
ALWAYS_PRINTED: dict[str, Any] = {"eventTime": None, "regarding": {}, "deprecatedSource": {},
                                  "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None}
EVENT_TYPES = ("Normal", "Warning")


def to_core(event: Mapping[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as the core/v1 Event stored for it."""
    core: dict[str, Any] = {"kind": "Event", "apiVersion": "v1"}
    if "metadata" in event:
        core["metadata"] = event["metadata"]
    for new_name, core_name in RENAMED.items():
        if event.get(new_name) is not None:
            core[core_name] = event[new_name]
    return core


def from_core(core: Mapping[str, Any]) -> dict[str, Any]:
    """A stored core/v1 Event as events.k8s.io/v1 serves it."""
    event: dict[str, Any] = {"kind": "Event", "apiVersion": API_VERSION, "metadata": core.get("metadata", {})}
    for new_name, core_name in RENAMED.items():
        value = core.get(core_name)
        if value not in (None, "", 0) or new_name in ALWAYS_PRINTED:
            event[new_name] = value if value not in (None, "") else ALWAYS_PRINTED.get(new_name, value)
    return event


def strict_problems(core: Mapping[str, Any]) -> list[field_errors.FieldError]:
    """What ValidateEventCreate adds for events.k8s.io/v1 (on top of the core checks; the name is checked
    for every kind): eventTime, a Normal/Warning type, a valid series, and none of the deprecated fields.

    Field paths are the internal type's, as kube-apiserver reports them (`firstTimestamp`, `count`).
    """
    problems = []
    series = core.get("series")
    if isinstance(series, dict):
        if int(series.get("count") or 0) < 2:
            problems.append(field_errors.invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            problems.append(field_errors.required("series.lastObservedTime"))
    if not core.get("eventTime"):
        problems.append(field_errors.required("eventTime"))
    if core.get("type") not in EVENT_TYPES:
        problems.append(field_errors.invalid("type", "", f"has invalid value: {core.get('type') or ''}"))
    for field in ("firstTimestamp", "lastTimestamp"):
        if core.get(field):
            problems.append(field_errors.invalid(field, "", "needs to be unset"))
    if core.get("count"):
        problems.append(field_errors.invalid("count", "", "needs to be unset"))
    source = core.get("source") or {}
    if source.get("component") or source.get("host"):
        problems.append(field_errors.invalid("source", "", "needs to be unset"))
    return problems
