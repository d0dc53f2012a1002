"""Custom objects through a CRD's structural `openAPIV3Schema`, the way kube-apiserver admits them.

On create and update kube-apiserver decodes the body, prunes fields the schema does not know,
drops non-nullable nulls and applies defaults, then validates; what passes is what it stores.
`admit` runs those steps; `prune`, `apply_defaults` and `validate` are each step alone, all pure
functions over decoded JSON that never modify their input.

Following apiextensions-apiserver (pruning/, defaulting/, listtype/, objectmeta/ and the
kube-openapi validator in `schema_validation`). Deliberately left out: `x-kubernetes-validations`
(CEL rules are ignored, never enforced), metadata validation inside embedded resources, and
ratcheting on update (an update is validated like a create).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox import field_errors, go_format, schema_validation
from remediator.sandbox.field_errors import FieldError

__all__ = [
    "FieldError",
    "admit",
    "apply_defaults",
    "invalid_status",
    "prune",
    "validate",
    "validate_crd_schema_structural",
    "validate_object_name",
    "validate_path_segment_name",
]

_META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def admit(schema: Mapping[str, Any], obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Prune, default and validate `obj` like kube-apiserver does on create and update.

    Returns the object the server would store and the errors it would answer with; the object is
    only meant to be stored when the list is empty. `metadata.name` is not checked here: the
    server runs `validate_object_name` first, as kube-apiserver reports metadata errors first.
    """
    stored = prune(schema, obj)  # already a copy, so defaulted in place rather than copied again
    _default_in_place(schema, stored)
    return stored, validate(schema, stored)


def prune(schema: Mapping[str, Any], obj: Any) -> Any:
    """A copy of `obj` without the fields `schema` does not specify.

    Root `apiVersion`, `kind` and `metadata` are always kept, and so are the same three in
    `x-kubernetes-embedded-resource` objects; `x-kubernetes-preserve-unknown-fields` keeps unknown
    fields while still pruning inside the known ones; `additionalProperties` keeps every key and
    prunes its value by that schema (`additionalProperties: true` has none, so only scalars survive).
    Pruning never fails: an unknown field is dropped silently, as the real server does.
    """
    pruned = copy.deepcopy(obj, _sharing_managed_fields(obj))
    root = dict(schema)
    root["x-kubernetes-embedded-resource"] = True  # the root is a resource: its type and object meta stay
    _prune(pruned, root)
    return pruned


def _sharing_managed_fields(obj: Any) -> dict[int, Any]:
    """A deepcopy memo that keeps `metadata.managedFields` shared rather than copied: pruning keeps it as it is,
    the server only ever replaces it as a whole, and its entries and field trees are never changed in place
    (managed_fields shares them across objects). It was two thirds of the copy of an Incident's status write."""
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    managed = metadata.get("managedFields") if isinstance(metadata, Mapping) else None
    return {} if managed is None else {id(managed): managed}


def apply_defaults(schema: Mapping[str, Any], obj: Any) -> Any:
    """A copy of `obj` with the schema's `default`s applied where a property is absent.

    First drops `null`s the schema does not allow (not `nullable`) and has no default for; a
    non-nullable `null` with a default gets the default; a `nullable` null is kept as is. A
    defaulted object is then defaulted inside, so `default: {}` brings its properties' defaults.
    """
    defaulted = copy.deepcopy(obj)
    _default_in_place(schema, defaulted)
    return defaulted


def _default_in_place(schema: Mapping[str, Any], obj: Any) -> None:
    _drop_disallowed_nulls(obj, schema)
    _default(obj, schema)


def validate(schema: Mapping[str, Any], obj: Any) -> list[FieldError]:
    """The errors kube-apiserver reports for `obj` against the schema, in the server's order.

    OpenAPI keyword checks first, then `apiVersion`/`kind` of embedded resources, then duplicates
    in `x-kubernetes-list-type: set` and `map` lists; properties in schema order, where the real
    server's Go map order is random. An empty list means valid. Never raises for decoded JSON
    values; apply `prune` and `apply_defaults` first to see what the server sees.
    """
    errors = schema_validation.validate_value(schema, obj)
    errors += _embedded_resource_errors("", obj, schema)
    if isinstance(obj, Mapping):
        errors += _list_errors_in_object("", schema, obj)
    return errors


def validate_object_name(name: str) -> list[FieldError]:
    """The errors kube-apiserver reports for `metadata.name` of a kind named by DNS subdomain rules.

    Empty is `Required value: name or generateName is required`; otherwise the name must be a
    lowercase RFC 1123 subdomain of at most 253 bytes. An empty list means the name is valid.
    """
    field = "metadata.name"
    if not name:
        return [field_errors.required(field, "name or generateName is required")]
    messages = []
    if len(name.encode()) > 253:
        messages.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(name):
        messages.append(_DNS1123_SUBDOMAIN_MESSAGE)
    return [field_errors.invalid(field, name, message) for message in messages]


def validate_path_segment_name(name: str) -> list[FieldError]:
    """The errors of a name that only has to be a URL path segment (ValidatePathSegmentName: RBAC kinds)."""
    field = "metadata.name"
    if not name:
        return [field_errors.required(field, "name or generateName is required")]
    if name in (".", ".."):
        return [field_errors.invalid(field, name, f"may not be '{name}'")]
    return [field_errors.invalid(field, name, f"may not contain '{c}'") for c in "/%" if c in name]


def invalid_status(*, kind: str, group: str, name: str, errors: Sequence[FieldError]) -> dict[str, Any]:
    """The 422 `metav1.Status` body kube-apiserver answers with for these errors.

    The message is `Kind.group "name" is invalid: <error>` with one error, `[e1, e2]` with
    several (repeats printed once, like `ErrorList.ToAggregate`); every error is also a cause.
    """
    group_kind = f"{kind}.{group}" if group else kind
    message = f"{group_kind} {go_format.quote(name)} is invalid"
    if errors:
        message += f": {field_errors.summary(errors)}"
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    causes = [{key: value for key, value in (("reason", e.reason), ("message", e.message), ("field", e.field))
               if value} for e in errors]
    if causes:
        details["causes"] = causes
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Invalid", "details": details, "code": 422}


def validate_crd_schema_structural(schema: Mapping[str, Any], *,
                                   path: str = "spec.versions[0].schema.openAPIV3Schema") -> list[str]:
    """The reasons `schema` is not structural, as kube-apiserver words them when refusing the CRD.

    Each entry is `field: message` under `path`, sorted like the server sorts them. Covers the
    invariants (types everywhere, `items` on arrays, nothing but value validations inside
    `anyOf`/`allOf`/`oneOf`/`not`, embedded resources are objects); it does not check that what
    the junctors name is also specified outside them, nor the root `metadata` restrictions.
    """
    return sorted(str(error) for error in _structural_errors(schema, "root", path))


# -- pruning (apiextensions-apiserver pruning/algorithm.go) ------------------------------------------


def _prune(value: Any, schema: Mapping[str, Any] | None) -> None:
    if schema is not None and schema.get("x-kubernetes-preserve-unknown-fields") is True:
        _prune_inside_known(value, schema)
        return
    if isinstance(value, dict):
        if schema is None:
            value.clear()
            return
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        properties = _properties(schema)
        for name in list(value):
            if embedded and name in _META_FIELDS:
                continue
            if name in properties:
                _prune(value[name], properties[name])
            elif _has_additional_properties(schema):
                _prune(value[name], _additional_schema(schema))
            else:
                del value[name]
    elif isinstance(value, list):
        items = _items(schema) if schema is not None else None
        for item in value:
            _prune(item, items)


def _prune_inside_known(value: Any, schema: Mapping[str, Any] | None) -> None:
    """x-kubernetes-preserve-unknown-fields: unknown fields stay, known ones are still pruned inside."""
    if schema is None:
        return
    if isinstance(value, dict):
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        properties = _properties(schema)
        for name, field_value in value.items():
            if embedded and name in _META_FIELDS:
                continue
            if name in properties:
                _prune(field_value, properties[name])
            elif _has_additional_properties(schema):
                _prune(field_value, _additional_schema(schema))
    elif isinstance(value, list):
        for item in value:
            _prune_inside_known(item, _items(schema))


# -- defaulting (apiextensions-apiserver defaulting/prunenulls.go, algorithm.go) -----------------------


def _drop_disallowed_nulls(value: Any, schema: Mapping[str, Any] | None) -> None:
    if schema is None:
        return  # nothing without a schema is dropped (prunenulls.go stops there too): not walked
    if isinstance(value, dict):
        properties = _properties(schema)
        additional = _additional_schema(schema)
        for name in list(value):
            field_schema = properties.get(name, additional)
            if (value[name] is None and field_schema is not None and not field_schema.get("nullable")
                    and field_schema.get("default") is None):
                del value[name]
            else:
                _drop_disallowed_nulls(value[name], field_schema)
    elif isinstance(value, list):
        items = _items(schema)
        for item in value:
            _drop_disallowed_nulls(item, items)


def _default(value: Any, schema: Mapping[str, Any] | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        properties = _properties(schema)
        for name, property_schema in properties.items():
            default = property_schema.get("default")
            if default is None:
                continue
            if name not in value or _is_non_nullable_null(value[name], property_schema):
                value[name] = copy.deepcopy(default)
        additional = _additional_schema(schema)
        for name in list(value):
            if name in properties:
                _default(value[name], properties[name])
            elif additional is not None:
                if _is_non_nullable_null(value[name], additional):
                    value[name] = copy.deepcopy(additional.get("default"))
                _default(value[name], additional)
    elif isinstance(value, list):
        items = _items(schema)
        for position, item in enumerate(value):
            if items is not None and _is_non_nullable_null(item, items):
                value[position] = copy.deepcopy(items.get("default"))
            _default(value[position], items)


def _is_non_nullable_null(value: Any, schema: Mapping[str, Any]) -> bool:
    return value is None and not schema.get("nullable")


# -- embedded resources (apiextensions-apiserver objectmeta/validation.go) ---------------------------


def _embedded_resource_errors(path: str, value: Any, schema: Mapping[str, Any] | None) -> list[FieldError]:
    if schema is None:
        return []
    errors: list[FieldError] = []
    if isinstance(value, dict):
        if schema.get("x-kubernetes-embedded-resource") is True:
            errors += _type_meta_errors(path, value)
        properties = _properties(schema)
        additional = _additional_schema(schema)
        for name, field_value in value.items():
            if name in properties:
                errors += _embedded_resource_errors(field_errors.child(path, name), field_value,
                                                    properties[name])
            elif additional is not None:
                errors += _embedded_resource_errors(field_errors.key(path, name), field_value, additional)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            errors += _embedded_resource_errors(field_errors.index(path, position), item, _items(schema))
    return errors


def _type_meta_errors(path: str, obj: Mapping[str, Any]) -> list[FieldError]:
    """apiVersion and kind of an embedded resource: present, strings, and well formed."""
    api_version_path = field_errors.child(path, "apiVersion")
    kind_path = field_errors.child(path, "kind")
    errors = []
    if "apiVersion" not in obj:
        errors.append(field_errors.required(api_version_path))
    if "kind" not in obj:
        errors.append(field_errors.required(kind_path))
    for name, value in obj.items():
        if name == "apiVersion":
            if not isinstance(value, str):
                errors.append(field_errors.invalid(api_version_path, value, "must be a string"))
            elif not value:
                errors.append(field_errors.required(api_version_path))
            elif value.count("/") > 1:
                errors.append(field_errors.invalid(api_version_path, value,
                                                   f"unexpected GroupVersion string: {value}"))
        elif name == "kind":
            if not isinstance(value, str):
                errors.append(field_errors.invalid(kind_path, value, "must be a string"))
            elif not value:
                errors.append(field_errors.required(kind_path))
            else:
                problems = _dns1035_label_problems(value.lower())
                if problems:
                    detail = "may have mixed case, but should otherwise match: " + ",".join(problems)
                    errors.append(field_errors.invalid(kind_path, value, detail))
    return errors


def _dns1035_label_problems(label: str) -> list[str]:
    problems = []
    if len(label.encode()) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.fullmatch(label):
        problems.append(_DNS1035_LABEL_MESSAGE)
    return problems


# -- list types (apiextensions-apiserver listtype/validation.go) -------------------------------------


def _list_errors_in_object(path: str, schema: Mapping[str, Any], obj: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    additional = _additional_schema(schema)
    if additional is not None:
        for name, value in obj.items():
            errors += _list_errors_in_value(field_errors.key(path, name), additional, value)
    properties = _properties(schema)
    for name, value in obj.items():
        if name in properties:
            errors += _list_errors_in_value(field_errors.child(path, name), properties[name], value)
    return errors


def _list_errors_in_value(path: str, schema: Mapping[str, Any], value: Any) -> list[FieldError]:
    if isinstance(value, list):
        return _list_errors_in_array(path, schema, value)
    if isinstance(value, dict):
        return _list_errors_in_object(path, schema, value)
    return []


def _list_errors_in_array(path: str, schema: Mapping[str, Any], items: list[Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        errors += [field_errors.duplicate(field_errors.index(path, i), items[i]) for i in _repeats(items)]
    elif list_type == "map":
        errors += _list_map_errors(path, schema, items)
    item_schema = _items(schema)
    if item_schema is not None:
        for position, item in enumerate(items):
            errors += _list_errors_in_value(field_errors.index(path, position), item_schema, item)
    return errors


class _Unspecified:
    """The key of a list-map entry that does not set the key field (or is null)."""


_UNSPECIFIED = _Unspecified()


def _list_map_errors(path: str, schema: Mapping[str, Any], items: list[Any]) -> list[FieldError]:
    for position, item in enumerate(items):
        if item is not None and not isinstance(item, dict):
            return [field_errors.invalid(field_errors.index(path, position), item,
                                         "must be an object for an array of list-type map")]
    if len(items) <= 1:
        return []
    declared = schema.get("x-kubernetes-list-map-keys")
    key_fields = [k for k in declared if isinstance(k, str)] if isinstance(declared, list) else []
    if len(key_fields) == 1:
        key_field = key_fields[0]
        keys: list[Any] = [_UNSPECIFIED if item is None or key_field not in item else item[key_field]
                           for item in items]
        return [field_errors.duplicate(field_errors.index(path, i),
                                       {} if keys[i] is _UNSPECIFIED else {key_field: keys[i]})
                for i in _repeats(keys)]
    keys = [{} if item is None else {k: item[k] for k in key_fields if k in item} for item in items]
    return [field_errors.duplicate(field_errors.index(path, i), keys[i]) for i in _repeats(keys)]


def _repeats(values: Sequence[Any]) -> list[int]:
    """Indexes where a value shows up for the second time (a third sighting is not reported again)."""
    seen: dict[Any, int] = {}
    repeats = []
    for position, value in enumerate(values):
        identity = _identity(value)
        seen[identity] = seen.get(identity, 0) + 1
        if seen[identity] == 2:
            repeats.append(position)
    return repeats


def _identity(value: Any) -> Any:
    """Go's equality for set members: compounds by their JSON, scalars by type and value."""
    if value is _UNSPECIFIED:
        return ("unspecified",)
    if isinstance(value, dict | list):
        return ("compound", go_format.to_json(value))
    if isinstance(value, bool):
        return ("bool", value)
    if go_format.is_int64(value):
        return ("int64", value)
    if go_format.is_float64(value):
        return ("float64", go_format.as_float(value))
    return ("scalar", type(value).__name__, value)


# -- structural schema invariants (apiextensions-apiserver schema/validation.go) ----------------------

# What may not appear inside anyOf/allOf/oneOf/not, when it counts as set, and what the server says.
_NESTED_FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("type", "non-empty", "must be empty to be structural"),
    ("additionalProperties", "present", "must be undefined to be structural"),
    ("default", "present", "must be undefined to be structural"),
    ("title", "non-empty", "must be empty to be structural"),
    ("description", "non-empty", "must be empty to be structural"),
    ("nullable", "true", "must be false to be structural"),
    ("externalDocs", "present", "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "true", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "true", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "true", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "non-empty", "must be empty to be structural"),
    ("x-kubernetes-list-type", "present", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "present", "must be undefined to be structural"),
    ("x-kubernetes-validations", "non-empty", "must be empty to be structural"),
)
_MISSING_TYPE = {
    "root": "must not be empty at the root",
    "item": "must not be empty for specified array items",
    "field": "must not be empty for specified object fields",
}


def _structural_errors(schema: Mapping[str, Any], level: str, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    declared_type = schema.get("type") if isinstance(schema.get("type"), str) else ""
    items = _items(schema)
    if declared_type == "array" and items is None:
        errors.append(field_errors.required(field_errors.child(path, "items"), "must be specified"))
    if items is not None:
        errors += _structural_errors(items, "item", field_errors.child(path, "items"))
    for name, property_schema in _properties(schema).items():
        errors += _structural_errors(property_schema, "field",
                                     field_errors.key(field_errors.child(path, "properties"), name))
    if _has_additional_properties(schema):
        if level == "root":
            errors.append(field_errors.forbidden(field_errors.child(path, "additionalProperties"),
                                                 "must not be used at the root"))
        additional = _additional_schema(schema)
        if additional is not None:
            additional_path = field_errors.child(path, "additionalProperties")
            errors += _structural_errors(additional, "field", additional_path)

    int_or_string = schema.get("x-kubernetes-int-or-string") is True
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = schema.get("x-kubernetes-embedded-resource") is True
    for extension, conflicting in (("x-kubernetes-preserve-unknown-fields", preserve),
                                   ("x-kubernetes-embedded-resource", embedded)):
        if int_or_string and conflicting:
            errors.append(field_errors.invalid(field_errors.child(path, extension), True,
                                               "must be false if x-kubernetes-int-or-string is true"))
    any_of, all_of = _subschemas(schema.get("anyOf")), _subschemas(schema.get("allOf"))
    skip_any_of = [dict(s) for s in any_of] == _INT_OR_STRING_ANY_OF
    skip_first_all_of_any_of = bool(all_of) and [dict(s) for s in _subschemas(all_of[0].get("anyOf"))] == \
        _INT_OR_STRING_ANY_OF
    errors += _junctor_errors(schema, skip_any_of, skip_first_all_of_any_of, level, path)

    type_path = field_errors.child(path, "type")
    if embedded and declared_type != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        errors.append(field_errors.invalid(type_path, declared_type, detail) if declared_type
                      else field_errors.required(type_path, detail))
    elif not declared_type and not int_or_string and not preserve:
        errors.append(field_errors.required(type_path, _MISSING_TYPE[level]))
    if embedded and _has_additional_properties(schema):
        errors.append(field_errors.forbidden(field_errors.child(path, "additionalProperties"),
                                             "must not be used if x-kubernetes-embedded-resource is set"))
    if level == "root" and declared_type and declared_type != "object":
        errors.append(field_errors.invalid(type_path, declared_type, "must be object at the root"))
    if embedded and not preserve and not _properties(schema):
        errors.append(field_errors.required(
            field_errors.child(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true "
            "without x-kubernetes-preserve-unknown-fields"))
    return errors


def _junctor_errors(schema: Mapping[str, Any], skip_any_of: bool, skip_first_all_of_any_of: bool, level: str,
                    path: str) -> list[FieldError]:
    def branch_path(junctor: str, position: int) -> str:
        return field_errors.index(field_errors.child(path, junctor), position)

    errors: list[FieldError] = []
    if not skip_any_of:
        for i, branch in enumerate(_subschemas(schema.get("anyOf"))):
            errors += _nested_errors(branch, False, level, branch_path("anyOf", i))
    for i, branch in enumerate(_subschemas(schema.get("allOf"))):
        errors += _nested_errors(branch, skip_first_all_of_any_of and i == 0, level, branch_path("allOf", i))
    for i, branch in enumerate(_subschemas(schema.get("oneOf"))):
        errors += _nested_errors(branch, False, level, branch_path("oneOf", i))
    not_schema = schema.get("not")
    if isinstance(not_schema, Mapping):
        errors += _nested_errors(not_schema, False, level, field_errors.child(path, "not"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re.compile(pattern)
        except re.error as e:
            errors.append(field_errors.invalid(field_errors.child(path, "pattern"), pattern,
                                               f"must be a valid regular expression, but isn't: {e}"))
    return errors


def _nested_errors(schema: Mapping[str, Any], skip_any_of: bool, level: str, path: str) -> list[FieldError]:
    """Inside anyOf/allOf/oneOf/not only value validations may appear."""
    errors = _junctor_errors(schema, skip_any_of, False, level, path)
    items = _items(schema)
    if items is not None:
        errors += _nested_errors(items, False, level, field_errors.child(path, "items"))
    properties_path = field_errors.child(path, "properties")
    for name, property_schema in _properties(schema).items():
        errors += _nested_errors(property_schema, False, "field", field_errors.key(properties_path, name))
    for keyword, counts_when, detail in _NESTED_FORBIDDEN:
        value = schema.get(keyword)
        is_set = {"present": value is not None, "true": value is True, "non-empty": bool(value)}[counts_when]
        if is_set:
            errors.append(field_errors.forbidden(field_errors.child(path, keyword), detail))
    if "metadata" in _properties(schema):
        errors.append(field_errors.forbidden(field_errors.key(properties_path, "metadata"),
                                             "must not be specified in a nested context"))
    return errors


# -- schema accessors --------------------------------------------------------------------------------


_properties = schema_validation.properties


def _items(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    items = schema.get("items")
    return items if isinstance(items, Mapping) else None


def _has_additional_properties(schema: Mapping[str, Any]) -> bool:
    return isinstance(schema.get("additionalProperties"), bool | Mapping)


def _additional_schema(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema of additionalProperties; `true`/`false` have none, so their values prune to scalars."""
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


def _field_schema(name: str, schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if schema is None:
        return None
    properties = _properties(schema)
    if name in properties:
        return properties[name]
    return _additional_schema(schema)


def _subschemas(value: Any) -> list[Mapping[str, Any]]:
    return [s for s in value if isinstance(s, Mapping)] if isinstance(value, list) else []
