"""The zero object of a kind, which a create is compared against to find the fields it sets.

kube-apiserver compares a created object with `New()` of its Go type serialized: structs that are
not pointers are there as `{}` (omitempty does not drop a struct) and fields without omitempty
as null, so `spec`, a Deployment's `template` or `strategy` are not "added" by a create and carry
no `.` of their own in `fieldsV1`, while a pointer struct or an omitempty list (`rollingUpdate`,
`ports`) is added whole. The schemas do not say which Go fields are pointers: required fields
are never omitempty, and the value (non-pointer) structs among optional fields follow the API
conventions by name (the tables below). A custom resource's zero object is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from remediator.sandbox import resources

# Optional fields of the built-in kinds whose Go type is a struct value, not a pointer.
VALUE_STRUCTS = frozenset({
    "metadata", "spec", "status", "template", "strategy", "updateStrategy", "jobTemplate", "involvedObject",
    "source", "roleRef", "resources", "loadBalancer", "daemonEndpoints", "nodeInfo", "kubeletEndpoint",
})
# Optional times whose Go type is a value (metav1.Time, MicroTime): null in a zero object, so a
# client's explicit null (kubectl's `creationTimestamp: null`) is no change.
NULL_TIMES = frozenset({"creationTimestamp", "firstTimestamp", "lastTimestamp", "eventTime"})
MAX_DEPTH = 8


def zero_object(resource: resources.ResourceType, resolve: Callable[[Mapping[str, Any]], Mapping[str, Any]],
                schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The kind's zero value as JSON, from its root schema (shared: never to be changed)."""
    if resource.custom:
        return {}
    key = (resource.group, resource.version, resource.kind)
    if key not in _ZEROS:
        _ZEROS[key] = _zero(resolve, schema, 0)
    return _ZEROS[key]


_ZEROS: dict[tuple[str, str, str], Mapping[str, Any]] = {}


def _zero(resolve: Callable[[Mapping[str, Any]], Mapping[str, Any]], schema: Mapping[str, Any],
          depth: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    required = set(schema.get("required") or ())
    for name, property_schema in (schema.get("properties") or {}).items():
        resolved = resolve(property_schema)
        is_struct = bool(resolved.get("properties"))
        if is_struct and (name in required or name in VALUE_STRUCTS) and depth < MAX_DEPTH:
            found[name] = _zero(resolve, resolved, depth + 1)
        elif name in required or name in NULL_TIMES:
            found[name] = None
    return found
