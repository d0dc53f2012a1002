"""PATCH bodies applied the way kube-apiserver applies them: merge patch, JSON patch, strategic merge.

Every function takes decoded JSON values, never mutates them, and returns new values.
Error messages name paths and operations but never values: a patch can carry secrets.

References:
- JSON Merge Patch, RFC 7386: https://www.rfc-editor.org/rfc/rfc7386
- JSON Patch, RFC 6902 (JSON Pointer, RFC 6901): https://www.rfc-editor.org/rfc/rfc6902
- Strategic merge patch: https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
  as implemented by k8s.io/apimachinery/pkg/util/strategicpatch (patch.go), whose list ordering we copy.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"

_ACCEPTED_TYPES = f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}"


class PatchError(Exception):
    """A patch that cannot be applied; `status_code` is what kube-apiserver answers for it."""

    status_code: ClassVar[int] = 422


class InvalidPatch(PatchError):
    """A well-formed request whose operations do not apply to the object (422 Unprocessable Entity)."""


class MalformedPatch(InvalidPatch):
    """A body that is not a patch of its declared type at all (400 Bad Request)."""

    status_code = 400


class PatchTestFailed(PatchError):
    """A JSON Patch `test` operation did not hold (422, which Kopf treats as a lost race)."""


class UnsupportedPatchType(PatchError):
    """A content type the sandbox does not apply, server-side apply included (415)."""

    status_code = 415


class StrategicMergeUnsupported(PatchError):
    """Strategic merge on a kind without merge strategies, i.e. a custom resource (415)."""

    status_code = 415


# -- JSON Merge Patch (RFC 7386) -------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """The target with an RFC 7386 merge patch applied.

    Objects merge key by key, `null` deletes a key, and anything that is not an object (lists
    included) replaces the target wholesale. Never fails: every JSON value is a valid merge patch.
    The result shares its values with the target (what the patch leaves alone) and the patch (what it
    sets); only the objects on the patched paths are new. None of them is to be changed in place: the
    server patches stored objects, which are never changed, with a body decoded for the request, and the
    store copies what it keeps. (A deep copy at every level copied the whole object once per level of the
    patch, and every list the patch set once more.)
    """
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


# -- JSON Patch (RFC 6902) -------------------------------------------------------------------------

_ARRAY_INDEX = re.compile(r"[+-]?[0-9]+")
_INVALID_ESCAPE = re.compile(r"~(?![01])")


def json_patch(target: Any, operations: Any) -> Any:
    """The target with RFC 6902 operations applied in order, all or nothing.

    Like kube-apiserver (evanphx/json-patch v4): `replace` of a missing object member adds it,
    `test` and `copy` read a missing member as `null`, and list indexes may be negative.

    Raises `PatchTestFailed` when a `test` does not hold, `MalformedPatch` when the operations are
    not a list, and `InvalidPatch` for an unknown op, a bad JSON Pointer, or a path that does not
    exist where the op needs it.
    """
    if not isinstance(operations, list):
        raise MalformedPatch("a JSON patch must be a list of operations")
    document = copy.deepcopy(target)
    for operation in operations:
        document = _apply_operation(document, operation)
    return document


def _apply_operation(document: Any, operation: Any) -> Any:
    if not isinstance(operation, dict):
        raise InvalidPatch("a JSON patch operation must be an object")
    op = operation.get("op")
    if op not in ("add", "remove", "replace", "move", "copy", "test"):
        raise InvalidPatch(f"Unexpected kind: {op}" if isinstance(op, str) else "operation has no op")
    path = _pointer_field(operation, "path", op)
    if op == "add":
        return _add(document, path, _value_field(operation, op), op)
    if op == "remove":
        return _remove(document, path, op)
    if op == "replace":
        return _replace(document, path, _value_field(operation, op), op)
    if op == "test":
        expected = _value_field(operation, op)
        try:
            actual = _get_or_null(document, path, op)
        except InvalidPatch:
            raise PatchTestFailed(f"testing value {path[0]} failed: test failed") from None
        if not json_equal(actual, expected):
            raise PatchTestFailed(f"testing value {path[0]} failed: test failed")
        return document
    source = _pointer_field(operation, "from", op)
    if op == "copy":
        return _add(document, path, copy.deepcopy(_get_or_null(document, source, op)), op)
    value = _get(document, source, op)
    if path[1] == source[1]:
        return document
    if path[1][: len(source[1])] == source[1]:
        raise InvalidPatch(f"move operation does not apply: {path[0]} is inside from {source[0]}")
    return _add(_remove(document, source, op), path, value, op)


# A parsed JSON Pointer: its text (for messages) and its unescaped reference tokens.
_Pointer = tuple[str, tuple[str, ...]]


def _pointer_field(operation: Mapping[str, Any], field: str, op: str) -> _Pointer:
    text = operation.get(field)
    if not isinstance(text, str):
        raise InvalidPatch(f"{op} operation has no {field}")
    if text == "":
        return text, ()
    if not text.startswith("/") or _INVALID_ESCAPE.search(text):
        raise InvalidPatch(f"{op} operation: {field} {text} is not a JSON pointer")
    return text, tuple(token.replace("~1", "/").replace("~0", "~") for token in text[1:].split("/"))


def _value_field(operation: Mapping[str, Any], op: str) -> Any:
    if "value" not in operation:
        raise InvalidPatch(f"{op} operation has no value")
    return copy.deepcopy(operation["value"])


def _missing(op: str, path: _Pointer) -> InvalidPatch:
    return InvalidPatch(f'{op} operation does not apply: doc is missing path: "{path[0]}": missing value')


def _list_index(token: str, size: int, op: str, path: _Pointer, *, inserting: bool) -> int:
    """The list position a token names, read as evanphx/json-patch v4 reads it (strconv.Atoi):
    leading zeros are fine and negative indexes count from the end, unlike RFC 6901."""
    if token == "-" and inserting:
        return size
    slots = size + 1 if inserting else size
    index = int(token) if _ARRAY_INDEX.fullmatch(token) else slots
    if index < 0:
        index += slots
    if not 0 <= index < slots:
        raise InvalidPatch(f"error in {op} for path: '{path[0]}': Unable to access invalid index: "
                           f"{token}: invalid index referenced")
    return index


def _parent(document: Any, path: _Pointer, op: str) -> Any:
    node = document
    for token in path[1][:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(token, len(node), op, path, inserting=False)]
        else:
            raise _missing(op, path)
    if not isinstance(node, dict | list):
        raise _missing(op, path)
    return node


def _get_or_null(document: Any, path: _Pointer, op: str) -> Any:
    """The value at the path, or null for a missing member of an existing object: how
    evanphx/json-patch v4 reads for `test` and `copy`."""
    if path[1] and isinstance(_parent(document, path, op), dict):
        return _parent(document, path, op).get(path[1][-1])
    return _get(document, path, op)


def _get(document: Any, path: _Pointer, op: str) -> Any:
    if not path[1]:
        return document
    parent, last = _parent(document, path, op), path[1][-1]
    if isinstance(parent, list):
        return parent[_list_index(last, len(parent), op, path, inserting=False)]
    if last not in parent:
        raise _missing(op, path)
    return parent[last]


def _add(document: Any, path: _Pointer, value: Any, op: str) -> Any:
    if not path[1]:
        return value
    parent, last = _parent(document, path, op), path[1][-1]
    if isinstance(parent, list):
        parent.insert(_list_index(last, len(parent), op, path, inserting=True), value)
    else:
        parent[last] = value
    return document


def _remove(document: Any, path: _Pointer, op: str) -> Any:
    if not path[1]:
        raise InvalidPatch(f"{op} operation does not apply: cannot remove the whole document")
    parent, last = _parent(document, path, op), path[1][-1]
    if isinstance(parent, list):
        del parent[_list_index(last, len(parent), op, path, inserting=False)]
    elif last in parent:
        del parent[last]
    else:
        raise InvalidPatch(f"error in {op} for path: '{path[0]}': Unable to remove nonexistent key: "
                           f"{last}: missing value")
    return document


def _replace(document: Any, path: _Pointer, value: Any, op: str) -> Any:
    if not path[1]:
        return value
    parent, last = _parent(document, path, op), path[1][-1]
    if isinstance(parent, list):
        parent[_list_index(last, len(parent), op, path, inserting=False)] = value
    else:
        parent[last] = value  # a missing member is added: evanphx/json-patch v4 never checks
    return document


def json_equal(left: Any, right: Any) -> bool:
    """Whether two JSON values are equal as RFC 6902 `test` compares them.

    Numbers compare by value (1 == 1.0), but booleans are not numbers and strings are not numbers.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return type(left) is type(right) and left == right


# -- Strategic merge patch -------------------------------------------------------------------------

# A merge list of scalars (metadata.finalizers): merged as a set, no key needed.
SET_OF_SCALARS: Final = ""


# Field path from the object root ("*" for any list element) -> merge key of the list there.
_MergeKeys = dict[tuple[str, ...], str]


def _under(prefix: tuple[str, ...], table: _MergeKeys) -> _MergeKeys:
    return {prefix + path: key for path, key in table.items()}


_OBJECT_META: _MergeKeys = {("finalizers",): SET_OF_SCALARS, ("ownerReferences",): "uid"}
_CONTAINER: _MergeKeys = {
    ("env",): "name",
    ("ports",): "containerPort",
    ("volumeMounts",): "mountPath",
    ("volumeDevices",): "devicePath",
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_POD_SPEC: _MergeKeys = {
    **{(name,): "name" for name in _CONTAINER_LISTS},
    **{path: key for name in _CONTAINER_LISTS for path, key in _under((name, "*"), _CONTAINER).items()},
    ("volumes",): "name",
    ("imagePullSecrets",): "name",
    ("hostAliases",): "ip",
    ("topologySpreadConstraints",): "topologyKey",
    ("resourceClaims",): "name",
    ("schedulingGates",): "name",
}
_POD_STATUS: _MergeKeys = {
    ("conditions",): "type",
    ("podIPs",): "ip",
    ("hostIPs",): "ip",
    ("resourceClaimStatuses",): "name",
}
_CONDITIONS: _MergeKeys = {("conditions",): "type"}
_META = _under(("metadata",), _OBJECT_META)
_WORKLOAD: _MergeKeys = {
    **_META,
    **_under(("spec", "template", "metadata"), _OBJECT_META),
    **_under(("spec", "template", "spec"), _POD_SPEC),
    **_under(("status",), _CONDITIONS),
}

# Lists merged by key (patchStrategy "merge" with its patchMergeKey in the Go API types), by kind
# and by path from the object root, "*" standing for any list element. Lists not named here are
# atomic: a patch replaces them whole (tolerations, args, command, envFrom, ...). Maps always merge.
MERGE_KEYS: Mapping[str, Mapping[tuple[str, ...], str]] = {
    "Pod": {**_META, **_under(("spec",), _POD_SPEC), **_under(("status",), _POD_STATUS)},
    "Deployment": _WORKLOAD,
    "StatefulSet": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "ReplicaSet": _WORKLOAD,
    "Job": _WORKLOAD,
    "Service": {**_META, ("spec", "ports"): "port", **_under(("status",), _CONDITIONS)},
    "Namespace": {**_META, **_under(("status",), _CONDITIONS)},
    "PodDisruptionBudget": {**_META, **_under(("status",), _CONDITIONS)},
    "ConfigMap": _META,
    "Secret": _META,
    "Event": _META,
    "Scale": _META,
}

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER = "$setElementOrder"

_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_ELEMENT_ORDER = "invalid patch format of setElementOrder list"


def strategic_merge_patch(target: Any, patch: Any, kind: str) -> Any:
    """The target with a Kubernetes strategic merge patch applied, as kube-apiserver would.

    Lists in `MERGE_KEYS[kind]` merge element by element (new elements first, as the real server
    orders them); other lists are replaced; `null` deletes a key. Directives honoured: `$patch`
    (replace/delete) in maps and list elements, `$retainKeys`, `$setElementOrder/<list>` and
    `$deleteFromPrimitiveList/<list>`.

    Raises `StrategicMergeUnsupported` for a kind without merge strategies (custom resources),
    `MalformedPatch` for a body that is not an object or a directive in the wrong shape, and
    `InvalidPatch` for lists that cannot be merged (elements without their merge key, `$patch: merge`).
    """
    merge_keys = MERGE_KEYS.get(kind)
    if merge_keys is None:
        raise StrategicMergeUnsupported(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}")
    if not isinstance(patch, dict):
        raise MalformedPatch("invalid JSON document")
    original = copy.deepcopy(target) if isinstance(target, dict) else {}
    return _StrategicMerge(merge_keys).merge_map(original, copy.deepcopy(patch), ())


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "string"


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path).replace(".*", "[*]") or "the object root"


def _is_directive(key: str) -> bool:
    return key in (_PATCH, _RETAIN_KEYS) or key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER))


def _as_stored(value: Any) -> Any:
    """A patch value taken as it is, the way the server stores it: decoding into the typed object
    drops nulls and directive keys (so a `$patch: delete` element stays, without its marker)."""
    if isinstance(value, dict):
        return {k: _as_stored(v) for k, v in value.items() if v is not None and not _is_directive(k)}
    if isinstance(value, list):
        return [_as_stored(v) for v in value]
    return value


def _unmatched(value: Any) -> tuple[Any, bool]:
    """A patch value for a field the object lacks, and whether to keep the field at all.

    strategicpatch's discardNullValuesFromPatch + removeDirectives: maps carrying `$patch` vanish,
    from lists too (so deleting from a list that is not there leaves an empty list).
    """
    if isinstance(value, dict):
        if value.get(_PATCH) is not None:
            return None, False
        kept = {}
        for key, item in value.items():
            new_item, keep = _unmatched(item)
            if item is not None and keep:
                kept[key] = new_item
        return kept, True
    if isinstance(value, list):
        return [new_item for new_item, keep in map(_unmatched, value) if keep], True
    return value, True


def _directive_target(key: str, prefix: str, problem: str) -> str:
    name = key[len(prefix):]
    if not name.startswith("/") or name == "/":
        raise MalformedPatch(problem)
    return name[1:]


class _StrategicMerge:
    """One strategic merge, mutating private deep copies of the object and the patch.

    Mirrors strategicpatch's mergeMap/mergeSlice so that list order and errors match the real
    server. Like it, values new to the object are taken from the patch as they are.
    """

    def __init__(self, merge_keys: Mapping[tuple[str, ...], str]) -> None:
        self.merge_keys = merge_keys

    def merge_map(self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
                  ) -> dict[str, Any]:
        if _PATCH in patch:
            directive = patch.pop(_PATCH)
            if directive == "replace":
                return dict(_as_stored(patch))
            if directive == "delete":
                return {}
            raise InvalidPatch(f"unknown patch type in the map at {_where(path)}: "
                               "only replace and delete apply to a map")
        self._retain_keys(original, patch)
        self._set_element_orders(original, patch, path)
        for key, value in patch.items():
            deleting = key.startswith(_DELETE_FROM_PRIMITIVE_LIST)
            if deleting:
                key = _directive_target(key, _DELETE_FROM_PRIMITIVE_LIST, _BAD_PRIMITIVE_LIST)
                if value is not None and not isinstance(value, list):
                    raise MalformedPatch(_BAD_PRIMITIVE_LIST)
            if value is None:
                original.pop(key, None)
                continue
            field_path = (*path, key)
            if key not in original or _kind_of(original[key]) != _kind_of(value):
                if not deleting:
                    replacement, keep = _unmatched(value)
                    if keep:
                        original[key] = _as_stored(replacement)
                    else:
                        original.pop(key, None)
            elif isinstance(value, dict):
                original[key] = self.merge_map(original[key], value, field_path)
            elif isinstance(value, list):
                original[key] = self.merge_list(original[key], value, field_path, deleting=deleting)
            else:
                original[key] = value
        return original

    def merge_list(self, original: list[Any], patch: list[Any], path: tuple[str, ...], *,
                   deleting: bool = False) -> list[Any]:
        merge_key = self.merge_keys.get(path)
        if merge_key is None and not deleting:
            return [_as_stored(item) for item in patch]
        if not original and not patch:
            return []
        kind = _element_kind([*original, *patch], path)
        if kind != "object":
            if deleting:
                return [item for item in original if not _contains(patch, item)]
            if merge_key:
                raise InvalidPatch(f"the list at {_where(path)} must hold objects with the key {merge_key}")
            merged = _dedupe([*original, *patch])
            in_patch, server_only = _partition(merged, patch, SET_OF_SCALARS, path)
            return _normalize_order(in_patch, server_only, patch, original, SET_OF_SCALARS, path)
        if deleting:
            raise MalformedPatch(_BAD_PRIMITIVE_LIST)
        if not merge_key:
            raise InvalidPatch(f"cannot merge lists without merge key for {_where(path)}")
        original, patch = self._list_directives(original, patch, merge_key, path)
        merged = list(original)
        for item in patch:
            if merge_key not in item:
                raise _no_merge_key(path, merge_key)
            index = _find(merged, merge_key, item[merge_key], path)
            if index is None:
                merged.append(_as_stored(item))
            else:
                merged[index] = self.merge_map(merged[index], item, (*path, "*"))
        in_patch, server_only = _partition(merged, patch, merge_key, path)
        return _normalize_order(in_patch, server_only, patch, original, merge_key, path)

    def _list_directives(self, original: list[Any], patch: list[Any], merge_key: str,
                         path: tuple[str, ...]) -> tuple[list[Any], list[Any]]:
        """Applies `$patch` list elements: returns the original left and the plain patch elements."""
        plain, replace = [], False
        for item in patch:
            if _PATCH not in item:
                plain.append(item)
            elif item[_PATCH] == "delete":
                if merge_key not in item:
                    raise _no_merge_key(path, merge_key)
                original = [kept for kept in original
                            if not (merge_key in kept and json_equal(kept[merge_key], item[merge_key]))]
            elif item[_PATCH] == "replace":
                replace = True
            elif item[_PATCH] == "merge":
                raise InvalidPatch("merging lists cannot yet be specified in the patch")
            else:
                raise InvalidPatch(f"unknown patch type in a list element at {_where(path)}")
        if replace:
            return [_as_stored(item) for item in plain], []
        return original, plain

    def _retain_keys(self, original: dict[str, Any], patch: dict[str, Any]) -> None:
        if _RETAIN_KEYS not in patch:
            return
        retained = patch.pop(_RETAIN_KEYS)
        if not isinstance(retained, list):
            raise MalformedPatch(_BAD_RETAIN_KEYS)
        for key, value in patch.items():
            if value is not None and not key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER)) \
                    and key not in retained:
                raise MalformedPatch(_BAD_RETAIN_KEYS)
        for key in [key for key in original if key not in retained]:
            del original[key]

    def _set_element_orders(self, original: dict[str, Any], patch: dict[str, Any],
                            path: tuple[str, ...]) -> None:
        """Merges each list that has a `$setElementOrder/<list>` and orders it as the directive says.

        Elements named in the directive take its order; elements only the server has keep their
        place relative to those. Merged lists are removed from the patch so they merge once.
        """
        for directive in [key for key in patch if key.startswith(_SET_ELEMENT_ORDER)]:
            order = patch.pop(directive)
            field = _directive_target(directive, _SET_ELEMENT_ORDER, _BAD_ELEMENT_ORDER)
            if not isinstance(order, list):
                raise MalformedPatch(_BAD_ELEMENT_ORDER)
            if field not in original and field not in patch:
                continue
            list_path = (*path, field)
            original_list, patch_list = original.get(field, []), patch.get(field, [])
            if not isinstance(original_list, list) or not isinstance(patch_list, list):
                raise InvalidPatch(f"{_where(list_path)} must be a list to take {directive}")
            merge_key = self.merge_keys.get(list_path, SET_OF_SCALARS)
            if not merge_key and any(isinstance(item, dict) for item in [*original_list, *patch_list]):
                continue  # an atomic list of objects has no key to order by: it is just replaced
            _check_order(patch_list, order, merge_key, list_path)
            if field not in patch:
                merged = original_list
            elif field not in original:
                merged = _as_stored(_unmatched(patch_list)[0])
            else:
                merged = self.merge_list(original_list, patch_list, list_path)
            in_order, server_only = _partition(merged, order, merge_key, list_path)
            # When the patch also deletes and adds elements, Go's slice aliasing can overwrite its copy
            # of the live list before this ordering; we order by the live list as it was.
            original[field] = _normalize_order(in_order, server_only, order, original_list, merge_key,
                                               list_path)
            patch.pop(field, None)


def _no_merge_key(path: tuple[str, ...], merge_key: str) -> InvalidPatch:
    return InvalidPatch(f"an element of {_where(path)} does not contain declared merge key: {merge_key}")


def _element_kind(items: list[Any], path: tuple[str, ...]) -> str:
    kinds = {_kind_of(item) for item in items}
    if "array" in kinds:
        raise InvalidPatch("lists of lists are not supported")
    if len(kinds) > 1:
        raise InvalidPatch(f"list element types are not identical in {_where(path)}")
    return kinds.pop()


def _contains(items: list[Any], value: Any) -> bool:
    return any(json_equal(item, value) for item in items)


def _dedupe(items: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for item in items:
        if not _contains(unique, item):
            unique.append(item)
    return unique


def _find(items: list[Any], merge_key: str, value: Any, path: tuple[str, ...]) -> int | None:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidPatch(f"an element of {_where(path)} is not an object")
        if merge_key in item and json_equal(item[merge_key], value):
            return index
    return None


def _partition(merged: list[Any], by: list[Any], merge_key: str, path: tuple[str, ...]
               ) -> tuple[list[Any], list[Any]]:
    """Splits merged elements into those present in `by` and the rest (server-only)."""
    present: list[Any] = []
    absent: list[Any] = []
    for item in merged:
        if merge_key:
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(path, merge_key)
            found = _find(by, merge_key, item[merge_key], path) is not None
        else:
            found = _contains(by, item)
        (present if found else absent).append(item)
    return present, absent


def _position(order: list[Any], item: Any, merge_key: str) -> int:
    for index, candidate in enumerate(order):
        if merge_key:
            if isinstance(candidate, dict) and json_equal(candidate.get(merge_key), item.get(merge_key)):
                return index
        elif json_equal(candidate, item):
            return index
    return -1


def _sorted_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    """strategicpatch.normalizeSliceOrder: items sorted by their place in `order`.

    Its comparator calls an item that `order` lacks "less" than anything, so where such items end
    up is decided by Go's insertion sort (sort.SliceStable below 20 items), which we replay.
    """

    def less(item: Any, other: Any) -> bool:
        here, there = _position(order, item, merge_key), _position(order, other, merge_key)
        return here < there if here >= 0 and there >= 0 else True

    ordered = list(items)
    for i in range(1, len(ordered)):
        j = i
        while j > 0 and less(ordered[j], ordered[j - 1]):
            ordered[j - 1], ordered[j] = ordered[j], ordered[j - 1]
            j -= 1
    return ordered


def _normalize_order(in_patch: list[Any], server_only: list[Any], patch_order: list[Any],
                     server_order: list[Any], merge_key: str, path: tuple[str, ...]) -> list[Any]:
    """strategicpatch.normalizeElementOrder: patch items in patch order, server-only items in
    server order, then interleaved so server-only items keep their place among known neighbours."""
    if merge_key:
        for item in [*patch_order, *server_order]:
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(path, merge_key)

    right = _sorted_by(in_patch, patch_order, merge_key)
    left = _sorted_by(server_only, server_order, merge_key)
    # strategicpatch.mergeSortedSlice: take a server-only item first only when the live list
    # places it before the next patch item.
    merged: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            merged.append(left[i])
            i += 1
        elif i >= len(left):
            merged.append(right[j])
            j += 1
        else:
            li, ri = _position(server_order, left[i], merge_key), _position(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                merged.append(left[i])
                i += 1
            else:
                merged.append(right[j])
                j += 1
    return merged


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str, path: tuple[str, ...]) -> None:
    """strategicpatch.validatePatchWithSetOrderList: patch items appear in the directive, in its order."""
    if not order or not patch_list:
        return
    if merge_key:
        for item in [*patch_list, *order]:
            if not isinstance(item, dict):
                raise InvalidPatch(f"an element of {_where(path)} is not an object")
        listed = [item for item in patch_list if item.get(_PATCH) != "delete"]
    else:
        listed = patch_list
    p = s = 0
    while p < len(listed) and s < len(order):
        if isinstance(listed[p], dict) and _PATCH in listed[p]:
            p += 1
            continue
        if merge_key:
            if merge_key not in listed[p] or merge_key not in order[s]:
                raise _no_merge_key(path, merge_key)
            same = json_equal(listed[p][merge_key], order[s][merge_key])
        else:
            same = json_equal(listed[p], order[s])
        if same:
            p += 1
        s += 1
    if p < len(listed):
        raise InvalidPatch(f"the order in the patch list {_where(path)} doesn't match "
                           f"the {_SET_ELEMENT_ORDER} list")


# -- dispatch by content type ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes | bytearray | memoryview) -> Any:
    try:
        return json.loads(bytes(body), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise MalformedPatch("the request body is not valid JSON") from None


def apply_patch(target: Any, body: Any, content_type: str, kind: str) -> Any:
    """The target patched by a PATCH request body, dispatched on its Content-Type.

    `body` is the raw bytes or the already decoded JSON. Media type parameters such as
    `; charset=utf-8` are ignored. Raises `UnsupportedPatchType` for server-side apply and unknown
    types, `MalformedPatch` for a body that does not decode to the declared patch shape, and the
    errors of `merge_patch`, `json_patch` and `strategic_merge_patch`.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == APPLY_PATCH:
        raise UnsupportedPatchType(f"the sandbox does not implement server-side apply ({APPLY_PATCH}); "
                                   f"accepted media types include: {_ACCEPTED_TYPES}")
    if media_type not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH):
        raise UnsupportedPatchType("the body of the request was in an unknown format - "
                                   f"accepted media types include: {_ACCEPTED_TYPES}")
    if isinstance(body, bytes | bytearray | memoryview):
        body = _decode(body)
    if media_type == JSON_PATCH:
        return json_patch(target, body)
    if media_type == MERGE_PATCH:
        if not isinstance(body, dict):
            raise MalformedPatch("Invalid JSON Patch")  # evanphx/json-patch wording, echoed by the server
        return merge_patch(target, body)
    return strategic_merge_patch(target, body, kind)
