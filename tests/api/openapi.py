"""Just enough of the API server's CRD validation and defaulting to check the generated schemas.

It covers what the generated schemas use (types, enums, patterns, bounds, required,
oneOf-of-required, int-or-string, preserve-unknown-fields, list maps); unknown
fields are pruned silently, as the API server does.
"""

import re
from datetime import datetime
from typing import Any

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
}


def schema_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Return `path: problem` for every way `value` breaks `schema`; empty when it conforms."""
    if not _type_matches(schema, value):
        return [f"{path}: expected {schema.get('type', 'integer or string')}, got {type(value).__name__}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: does not match pattern")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{path}: length out of bounds")
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value)
            except ValueError:
                errors.append(f"{path}: not a date-time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        errors += _bounds_errors(schema, value, path)
    if isinstance(value, list):
        errors += _array_errors(schema, value, path)
    if isinstance(value, dict):
        errors += _object_errors(schema, value, path)
    return errors


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Return a copy of `value` with the schema's defaults filled in, as the API server does."""
    if isinstance(value, dict) and "properties" in schema:
        result = dict(value)
        for name, child in schema["properties"].items():
            if name not in result and "default" in child:
                result[name] = child["default"]
            if name in result:
                result[name] = apply_defaults(child, result[name])
        return result
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return {key: apply_defaults(schema["additionalProperties"], item) for key, item in value.items()}
    if isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def _type_matches(schema: dict[str, Any], value: Any) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    kind = schema.get("type")
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return kind in _TYPES and isinstance(value, _TYPES[kind])


def _bounds_errors(schema: dict[str, Any], value: float, path: str) -> list[str]:
    errors = []
    if "minimum" in schema:
        low = schema["minimum"]
        if value < low or (schema.get("exclusiveMinimum") and value == low):
            errors.append(f"{path}: below minimum")
    if "maximum" in schema:
        high = schema["maximum"]
        if value > high or (schema.get("exclusiveMaximum") and value == high):
            errors.append(f"{path}: above maximum")
    return errors


def _array_errors(schema: dict[str, Any], value: list[Any], path: str) -> list[str]:
    errors = []
    if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
        errors.append(f"{path}: item count out of bounds")
    for index, item in enumerate(value):
        errors += schema_errors(schema["items"], item, f"{path}[{index}]")
    if schema.get("x-kubernetes-list-type") == "map":
        keys = [tuple(item.get(key) for key in schema["x-kubernetes-list-map-keys"]) for item in value]
        if len(set(keys)) != len(keys):
            errors.append(f"{path}: duplicate list-map keys")
    return errors


def _object_errors(schema: dict[str, Any], value: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}.{name}: required" for name in schema.get("required", []) if name not in value]
    branches = schema.get("oneOf", [])
    if branches:
        matching = [branch for branch in branches if all(name in value for name in branch["required"])]
        if len(matching) != 1:
            errors.append(f"{path}: must match exactly one oneOf branch, matches {len(matching)}")
    for name, item in value.items():
        if name in schema.get("properties", {}):
            errors += schema_errors(schema["properties"][name], item, f"{path}.{name}")
        elif isinstance(schema.get("additionalProperties"), dict):
            errors += schema_errors(schema["additionalProperties"], item, f"{path}.{name}")
    return errors


def pruned_fields(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Return the paths of the fields in `value` the API server would drop as undeclared."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        pruned = []
        for name, item in value.items():
            if name in schema.get("properties", {}):
                pruned += pruned_fields(schema["properties"][name], item, f"{path}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                pruned += pruned_fields(schema["additionalProperties"], item, f"{path}.{name}")
            else:
                pruned.append(f"{path}.{name}")
        return pruned
    if isinstance(value, list) and "items" in schema:
        return [
            field
            for index, item in enumerate(value)
            for field in pruned_fields(schema["items"], item, f"{path}[{index}]")
        ]
    return []
