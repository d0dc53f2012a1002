"""The OpenAPI schemas of the built-in kinds, from the `kubernetes-validate` package.

kubernetes-validate ships every Kubernetes release's definitions (`_definitions.json`, the API's
OpenAPI definitions restated as JSON Schema: nullable types, `#/$defs/` references). They are
turned back into the form kube-apiserver publishes, for /openapi/v3 (`#/components/schemas/`,
a `$ref` with siblings wrapped in `allOf`) and /openapi/v2 (`#/definitions/`).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

PACKAGE = "kubernetes_validate"
SCHEMAS_DIR = "kubernetes-json-schema"
V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
_LOCAL_PREFIX = "#/$defs/"
_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local$")


@functools.cache
def release() -> str:
    """The newest Kubernetes release the installed kubernetes-validate has definitions for (`v1.37.0`)."""
    found = []
    for entry in importlib.resources.files(PACKAGE).joinpath(SCHEMAS_DIR).iterdir():
        match = _VERSION_DIR.match(entry.name)
        if match is not None:
            found.append((tuple(int(part) for part in match.groups()), entry.name))
    return max(found)[1].removesuffix("-local")


@functools.cache
def _definitions() -> Mapping[str, Any]:
    path = importlib.resources.files(PACKAGE).joinpath(SCHEMAS_DIR, f"{release()}-local", "_definitions.json")
    definitions: Mapping[str, Any] = json.loads(path.read_text())["$defs"]
    return definitions


def has(name: str) -> bool:
    return name in _definitions()


@functools.cache
def _closure(name: str) -> tuple[str, ...]:
    """`name` and every definition it refers to, transitively."""
    seen: list[str] = []
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen or current not in _definitions():
            continue
        seen.append(current)
        pending.extend(_references(_definitions()[current]))
    return tuple(seen)


def _references(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_LOCAL_PREFIX):
            yield ref[len(_LOCAL_PREFIX):]
        for value in schema.values():
            yield from _references(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _references(item)


def v3_schemas(names: Iterable[str]) -> dict[str, Any]:
    """The named definitions and all they refer to, as /openapi/v3 documents carry them."""
    return {name: _published(name, V3_PREFIX) for root in names for name in _closure(root)}


def v3_schema(name: str) -> Any:
    """One definition as /openapi/v3 carries it (its references left as they are); None when unknown."""
    return _published(name, V3_PREFIX) if name in _definitions() else None


def v2_definitions() -> dict[str, Any]:
    """Every definition, as /openapi/v2 carries them."""
    return {name: _published(name, V2_PREFIX) for name in _definitions()}


@functools.cache
def _published(name: str, prefix: str) -> Any:
    return _convert(_definitions()[name], prefix, top=True)


def _convert(schema: Any, prefix: str, *, top: bool = False) -> Any:
    """One JSON Schema node in OpenAPI form (see the module docstring)."""
    if isinstance(schema, list):
        return [_convert(item, prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    one_of = schema.get("oneOf")
    if isinstance(one_of, list) and all(isinstance(o, dict) and set(o) == {"type"} for o in one_of):
        types = {t for o in one_of for t in ([o["type"]] if isinstance(o["type"], str) else o["type"]) if t != "null"}
        # IntOrString and Quantity: published as strings (int-or-string marks the former).
        rest = {k: _convert(v, prefix) for k, v in schema.items() if k != "oneOf"}
        return {**rest, "type": "string", **({"format": "int-or-string"} if "integer" in types else {})}
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            converted[key] = prefix + value.removeprefix(_LOCAL_PREFIX)
        elif key == "type" and isinstance(value, list):
            concrete = [t for t in value if t != "null"]
            converted[key] = concrete[0] if len(concrete) == 1 else concrete
        elif key == "properties" and isinstance(value, dict):
            converted[key] = {field: _property(field, sub, prefix, top) for field, sub in value.items()}
        elif key in ("$schema", "$id"):
            continue
        else:
            converted[key] = _convert(value, prefix)
    if "$ref" in converted and len(converted) > 1 and prefix == V3_PREFIX:
        ref = converted.pop("$ref")
        converted["allOf"] = [{"$ref": ref}]
    return converted


def _property(field: str, schema: Any, prefix: str, top: bool) -> Any:
    converted = _convert(schema, prefix)
    if top and field in ("apiVersion", "kind") and isinstance(converted, dict):
        converted.pop("enum", None)  # kubernetes-validate pins a kind's own; the API's schemas do not
    return converted
