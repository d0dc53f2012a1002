"""Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for with `Accept: ...;as=Table`.

Custom resources are printed from their CRD's additionalPrinterColumns (an Age column when there
are none), as apiextensions-apiserver's tableconvertor does; built-in kinds by `printers`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from remediator.sandbox import errors, go_format, printers, resources

Row = Mapping[str, Any]
INCLUDE_OBJECT = ("None", "Metadata", "Object")
# What a CRD without additionalPrinterColumns is printed with (serveDefaultColumnsIfEmpty).
DEFAULT_CUSTOM_COLUMNS = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a Table (kubectl's first choice for `get`)."""
    return any("as=Table" in media_type.replace(" ", "") for media_type in accept.split(","))


def include_object(query: Mapping[str, str]) -> str:
    """The `includeObject` option of a Table request (Metadata by default); 400 for other values."""
    value = query.get("includeObject") or "Metadata"
    if value not in INCLUDE_OBJECT:
        supported = ", ".join(go_format.quote(v) for v in sorted(INCLUDE_OBJECT))
        raise errors.bad_request(f"includeObject: Unsupported value: {go_format.quote(value)}: "
                                 f"supported values: {supported}")
    return value


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


def custom_cell(value: Any, column_type: str, now: datetime.datetime) -> Any:
    """A printer column's cell as apiextensions' cellForJSONValue makes it; None prints as blank."""
    if value is None:
        return None
    if column_type == "string":
        # JSONPath prints maps and lists as JSON and scalars as text.
        if isinstance(value, str):
            return value
        if isinstance(value, dict | list):
            return go_format.to_json(value)
        return go_format.value_v(value)
    if column_type == "integer" and go_format.is_int64(value):
        return int(value)
    if column_type == "integer" and isinstance(value, float):
        return int(value)
    if column_type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if column_type == "boolean" and isinstance(value, bool):
        return value
    if column_type == "date" and isinstance(value, str):
        moment = printers.parse_time(value)
        return "<invalid>" if moment is None else printers.age(value, now)
    return None


def _custom_columns(resource: resources.ResourceType) -> list[printers.Column]:
    def extract(column: Mapping[str, Any]) -> Callable[[Row, datetime.datetime], Any]:
        return lambda obj, now: custom_cell(json_path(obj, column["jsonPath"]), column.get("type", "string"), now)

    return [printers.NAME] + [
        printers.Column(column["name"], extract(column), type=column.get("type", "string"),
                        priority=int(column.get("priority", 0)), format=column.get("format", ""),
                        description=column.get("description", ""))
        for column in resource.printer_columns or DEFAULT_CUSTOM_COLUMNS]


def _row_object(item: Row, include: str) -> Any:
    if include == "None":
        return None
    if include == "Object":
        return item
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item["metadata"]}


def table(resource: resources.ResourceType, items: Sequence[Row], now: datetime.datetime, *,
          include: str = "Metadata") -> dict[str, Any]:
    """A Table of the objects: every column (kubectl hides priority > 0 unless -o wide), one row each.

    `include` is the request's includeObject: each row carries None, the PartialObjectMetadata or
    the whole object. The caller sets metadata (resourceVersion, continue) for lists.
    """
    columns = _custom_columns(resource) if resource.custom else list(printers.columns(resource.kind))
    rows = [{"cells": [column.cell(item, now) for column in columns], "object": _row_object(item, include)}
            for item in items]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [column.definition() for column in columns], "rows": rows}


def object_table(resource: resources.ResourceType, item: Row, now: datetime.datetime, *,
                 include: str = "Metadata") -> dict[str, Any]:
    """The Table of one object (a GET by name), carrying the object's resourceVersion."""
    result = table(resource, [item], now, include=include)
    result["metadata"] = {"resourceVersion": item["metadata"].get("resourceVersion", "")}
    return result


class WatchTables:
    """Turns the objects of a watch into Tables for `kubectl get --watch`.

    Only the first Table carries column definitions; kubectl reuses them for the later rows.
    """

    def __init__(self, resource: resources.ResourceType, clock: Callable[[], datetime.datetime],
                 include: str) -> None:
        self.resource = resource
        self.clock = clock
        self.include = include
        self.columns_sent = False

    def __call__(self, obj: Row) -> dict[str, Any]:
        result = object_table(self.resource, obj, self.clock(), include=self.include)
        if self.columns_sent:
            result["columnDefinitions"] = []
        self.columns_sent = True
        return result
