"""Server-side printing: meta.k8s.io/v1 Table responses for `kubectl get`."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from remediator.sandbox import resources

Row = Mapping[str, Any]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def human_age(since: str | None, now: datetime.datetime) -> str:
    """kubectl's short age ("5s", "3m", "2h", "4d") of an RFC 3339 timestamp; "<unknown>" if unparsable."""
    if not since:
        return "<unknown>"
    try:
        moment = datetime.datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600 * 2:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


_FILTER = re.compile(r'^(?P<field>[^\[]+)\[\?\(@\.(?P<key>[\w.]+)==["\'](?P<value>[^"\']*)["\']\)\]$')


def json_path(obj: Any, expression: str) -> Any:
    """Evaluate the JSONPath subset CRD printer columns use: .a.b, .list[0], .list[?(@.k=="v")].f."""
    current: Any = obj
    expression = expression.strip().lstrip("{").rstrip("}").lstrip("$")
    for part in re.findall(r'\.?([^.\[]+(?:\[[^\]]*\])?)', _join_filters(expression)):
        match = _FILTER.match(part)
        if match:
            items = current.get(match["field"]) if isinstance(current, Mapping) else None
            found = [i for i in items or [] if isinstance(i, Mapping)
                     and str(json_path(i, "." + match["key"])) == match["value"]]
            current = found[0] if found else None
        elif "[" in part:
            field, index = part[:-1].split("[", 1)
            items = current.get(field) if isinstance(current, Mapping) else None
            try:
                current = items[int(index)] if isinstance(items, list) else None
            except (IndexError, ValueError):
                current = None
        else:
            current = current.get(part) if isinstance(current, Mapping) else None
        if current is None:
            return None
    return current


def _join_filters(expression: str) -> str:
    # Dots inside a filter (@.type) must not split the path: protect them first.
    return re.sub(r'\[\?\(@\.([^)]*)\)\]', lambda m: "[?(@." + m.group(1).replace(".", "\x00") + ")]",
                  expression).replace("\x00", ".")


def _cell(value: Any, column_type: str, now: datetime.datetime) -> Any:
    if value is None:
        return None
    if column_type == "date":
        return human_age(str(value), now)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _ready_pods(pod: Row) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    containers = (pod.get("spec") or {}).get("containers") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"


Column = tuple[str, str, Callable[[Row, datetime.datetime], Any]]

BUILTIN_COLUMNS: dict[str, Sequence[Column]] = {
    "Pod": (
        ("Ready", "string", lambda o, n: _ready_pods(o)),
        ("Status", "string", lambda o, n: "Terminating" if o["metadata"].get("deletionTimestamp")
         else (o.get("status") or {}).get("phase", "Pending")),
        ("Restarts", "integer", lambda o, n: sum(s.get("restartCount", 0) for s in
                                                 (o.get("status") or {}).get("containerStatuses") or [])),
    ),
    "Deployment": (
        ("Ready", "string", lambda o, n: f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
         f"{(o.get('spec') or {}).get('replicas', 1)}"),
        ("Up-to-date", "integer", lambda o, n: (o.get("status") or {}).get("updatedReplicas", 0)),
        ("Available", "integer", lambda o, n: (o.get("status") or {}).get("availableReplicas", 0)),
    ),
    "ReplicaSet": (
        ("Desired", "integer", lambda o, n: (o.get("spec") or {}).get("replicas", 1)),
        ("Current", "integer", lambda o, n: (o.get("status") or {}).get("replicas", 0)),
        ("Ready", "integer", lambda o, n: (o.get("status") or {}).get("readyReplicas", 0)),
    ),
    "StatefulSet": (
        ("Ready", "string", lambda o, n: f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
         f"{(o.get('spec') or {}).get('replicas', 1)}"),
    ),
    "Job": (
        ("Status", "string", lambda o, n: _job_status(o)),
        ("Completions", "string", lambda o, n: f"{(o.get('status') or {}).get('succeeded', 0)}/"
         f"{(o.get('spec') or {}).get('completions', 1)}"),
    ),
    "Event": (
        ("Type", "string", lambda o, n: o.get("type", "")),
        ("Reason", "string", lambda o, n: o.get("reason", "")),
        ("Object", "string", lambda o, n: f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
         f"{(o.get('involvedObject') or {}).get('name', '')}"),
        ("Message", "string", lambda o, n: o.get("message", "")),
    ),
    "Secret": (
        ("Type", "string", lambda o, n: o.get("type", "Opaque")),
        ("Data", "integer", lambda o, n: len(o.get("data") or {})),
    ),
    "Namespace": (("Status", "string", lambda o, n: (o.get("status") or {}).get("phase", "Active")),),
}


def _job_status(job: Row) -> str:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return "Running"


def _printer_column(column: Mapping[str, Any], now: datetime.datetime) -> Callable[[Row], Any]:
    return lambda obj: _cell(json_path(obj, column["jsonPath"]), column.get("type", "string"), now)


def _builtin_column(fn: Callable[[Row, datetime.datetime], Any], now: datetime.datetime
                    ) -> Callable[[Row], Any]:
    return lambda obj: fn(obj, now)


def table(resource: resources.ResourceType, items: Sequence[Row], now: datetime.datetime) -> dict[str, Any]:
    """A Table of the objects with Name first and Age last, like kube-apiserver's printers."""
    definitions: list[dict[str, Any]] = [{"name": "Name", "type": "string", "format": "name",
                                          "description": "Name", "priority": 0}]
    extract: list[Callable[[Row], Any]] = []
    if resource.custom:
        for column in resource.printer_columns:
            definitions.append({"name": column["name"], "type": column.get("type", "string"),
                                "format": column.get("format", ""), "description": column.get("description", ""),
                                "priority": column.get("priority", 0)})
            extract.append(_printer_column(column, now))
        if not resource.printer_columns:
            definitions.append({"name": "Age", "type": "date", "format": "", "description": "", "priority": 0})
            extract.append(lambda o: human_age(o["metadata"].get("creationTimestamp"), now))
    else:
        for name, column_type, fn in BUILTIN_COLUMNS.get(resource.kind, ()):
            definitions.append({"name": name, "type": column_type, "format": "", "description": name,
                                "priority": 0})
            extract.append(_builtin_column(fn, now))
        definitions.append({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0})
        extract.append(lambda o: human_age(o["metadata"].get("creationTimestamp"), now))
    rows = [{"cells": [item["metadata"].get("name")] + [fn(item) for fn in extract],
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": item["metadata"]}} for item in items]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": definitions,
            "rows": rows}
