"""Field sets as server-side apply tracks them: which fields of an object a manager owns.

A path is a tuple of structured-merge-diff path elements, written as in `fieldsV1`: `f:<field>`,
`k:<key fields as JSON>` for an item of an associative list, `v:<value as JSON>` for an item of a
set. `managedFields[].fieldsV1` nests them, with `.` marking a node owned itself as well as its
children. The schema says which lists are atomic, sets or maps (x-kubernetes-list-type and
-list-map-keys, or a patch merge key), and which maps are atomic (x-kubernetes-map-type).
https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Path = tuple[str, ...]
# Defaults of list-map key fields, which structured-merge-diff fills in to match items: the API's
# schemas default `protocol` (ports of containers and Services) to TCP; kubernetes-validate's copy
# of them leaves defaults out.
KEY_DEFAULTS: Mapping[str, Any] = {"protocol": "TCP"}
# Resolves a schema's `$ref`/`allOf` to the schema it stands for; identity for inline schemas.
Resolve = Callable[[Mapping[str, Any]], Mapping[str, Any]]
EMPTY: Mapping[str, Any] = {}
# A field one side of a comparison does not have (a JSON null is a value, as in structured-merge-diff).
ABSENT: Any = object()


@dataclasses.dataclass
class Comparison:
    """What changed between two objects (structured-merge-diff's Comparison): added and removed
    paths hold whole subtrees, modified ones the leaves (and atomic values) that differ."""

    added: list[Path] = dataclasses.field(default_factory=list)
    removed: list[Path] = dataclasses.field(default_factory=list)
    modified: list[Path] = dataclasses.field(default_factory=list)


def list_semantics(schema: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """("atomic" | "set" | "map", map keys) of a list schema; a patch merge key makes a map list."""
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        return "map", tuple(schema.get("x-kubernetes-list-map-keys") or ())
    if list_type == "set":
        return "set", ()
    merge_key = schema.get("x-kubernetes-patch-merge-key")
    if list_type is None and merge_key and schema.get("x-kubernetes-patch-strategy", "").startswith("merge"):
        return "map", (merge_key,)
    return "atomic", ()


@functools.lru_cache(maxsize=8192)
def field_element(key: str) -> str:
    """`f:<key>`: one string for every path naming the field, not a new one per write and per tree."""
    return f"f:{key}"


def item_element(item: Any, semantics: str, keys: tuple[str, ...], position: int) -> str:
    if semantics == "map" and isinstance(item, dict):
        fields = {key: item.get(key, KEY_DEFAULTS.get(key)) for key in sorted(keys)
                  if key in item or key in KEY_DEFAULTS}
        return "k:" + json.dumps(fields, separators=(",", ":"))
    if semantics == "set":
        return "v:" + json.dumps(item, separators=(",", ":"))
    return f"i:{position}"


class Walker:
    """Field sets of values under one schema (resolved through `resolve`)."""

    def __init__(self, resolve: Resolve) -> None:
        self.resolve = resolve

    def child(self, schema: Mapping[str, Any], key: str) -> tuple[Mapping[str, Any], bool]:
        """The schema of a map's entry, and whether it is a declared field (not a free-form map key)."""
        properties = schema.get("properties") or {}
        if key in properties:
            return self.resolve(properties[key]), True
        additional = schema.get("additionalProperties")
        return (self.resolve(additional) if isinstance(additional, dict) else EMPTY), False

    def items(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        items = schema.get("items")
        return self.resolve(items) if isinstance(items, dict) else EMPTY

    def field_set(self, value: Any, schema: Mapping[str, Any], path: Path = ()) -> set[Path]:
        """Every path a value sets (structured-merge-diff's ToFieldSet)."""
        found: set[Path] = set()
        if isinstance(value, dict):
            if schema.get("x-kubernetes-map-type") == "atomic":
                return {path}
            for key, child_value in value.items():
                child_schema, declared = self.child(schema, key)
                child_path = (*path, field_element(key))
                found |= self.field_set(child_value, child_schema, child_path)
                if child_value is None or child_value == {} or not declared:
                    found.add(child_path)
        elif isinstance(value, list):
            semantics, keys = list_semantics(schema)
            if semantics == "atomic":
                return {path}
            item_schema = self.items(schema)
            for position, item in enumerate(value):
                item_path = (*path, item_element(item, semantics, keys, position))
                found |= self.field_set(item, item_schema, item_path)
                found.add(item_path)
        else:
            found.add(path)
        return found

    def compare(self, old: Any, new: Any, schema: Mapping[str, Any]) -> Comparison:
        """The paths `new` adds, removes and modifies relative to `old` (typed.Compare)."""
        comparison = Comparison()
        self._compare(old, new, schema, (), comparison)
        return comparison

    def _compare(self, old: Any, new: Any, schema: Mapping[str, Any], path: Path, comparison: Comparison) -> None:
        if isinstance(old, dict) or isinstance(new, dict):
            self._compare_maps(old, new, schema, path, comparison)
        elif isinstance(old, list) or isinstance(new, list):
            self._compare_lists(old, new, schema, path, comparison)
        else:
            _compare_leaf(old, new, path, comparison)

    def _compare_maps(self, old: Any, new: Any, schema: Mapping[str, Any], path: Path,
                      comparison: Comparison) -> None:
        old_map = old if isinstance(old, dict) else None
        new_map = new if isinstance(new, dict) else None
        mismatched = _mismatched(old, old_map) or _mismatched(new, new_map)
        if mismatched or schema.get("x-kubernetes-map-type") == "atomic" or (not old_map and not new_map):
            _compare_leaf(old, new, path, comparison)  # both empty: a leaf, which keeps {} apart from null
            return
        old_fields, new_fields = old_map or EMPTY, new_map or EMPTY
        for key in {**old_fields, **new_fields}:
            old_value, new_value = old_fields.get(key, ABSENT), new_fields.get(key, ABSENT)
            if old_value is not ABSENT and old_value == new_value:
                continue  # nothing below changed: the common case of a small patch, at C speed
            self._compare(old_value, new_value, self.child(schema, key)[0], (*path, field_element(key)), comparison)
        _record_presence(old, new, path, comparison)

    def _compare_lists(self, old: Any, new: Any, schema: Mapping[str, Any], path: Path,
                       comparison: Comparison) -> None:
        old_list = old if isinstance(old, list) else None
        new_list = new if isinstance(new, list) else None
        mismatched = _mismatched(old, old_list) or _mismatched(new, new_list)
        semantics, keys = list_semantics(schema)
        if mismatched or semantics == "atomic" or (not old_list and not new_list):
            _compare_leaf(old, new, path, comparison)
            return
        item_schema = self.items(schema)
        self._compare_children(_items_by_element(old_list or [], semantics, keys),
                               _items_by_element(new_list or [], semantics, keys),
                               lambda element: item_schema, path, comparison)
        _record_presence(old, new, path, comparison)

    def _compare_children(self, old_children: Mapping[str, Any], new_children: Mapping[str, Any],
                          child_schema: Callable[[str], Mapping[str, Any]], path: Path,
                          comparison: Comparison) -> None:
        """Compare the fields or items of both sides, by path element."""
        for element in {**old_children, **new_children}:
            old_value, new_value = old_children.get(element, ABSENT), new_children.get(element, ABSENT)
            if old_value is not ABSENT and old_value == new_value:
                continue  # nothing below changed: the common case of a small patch, at C speed
            self._compare(old_value, new_value, child_schema(element), (*path, element), comparison)

    def value_at(self, value: Any, schema: Mapping[str, Any], path: Path) -> tuple[bool, Any]:
        """(found, the value at path) in an object."""
        for element in path:
            if isinstance(value, dict) and element.startswith("f:"):
                key = element[2:]
                if key not in value:
                    return False, None
                schema = self.child(schema, key)[0]
                value = value[key]
            elif isinstance(value, list):
                semantics, keys = list_semantics(schema)
                item_schema = self.items(schema)
                match = [item for position, item in enumerate(value)
                         if item_element(item, semantics, keys, position) == element]
                if not match:
                    return False, None
                value, schema = match[0], item_schema
            else:
                return False, None
        return True, value

    def remove(self, value: Any, schema: Mapping[str, Any], path: Path) -> None:
        """Remove the field or list item at path from an object, in place (nothing when absent)."""
        if not path:
            return
        *parent_path, last = path
        found, parent = self.value_at(value, schema, tuple(parent_path))
        if not found:
            return
        if isinstance(parent, dict) and last.startswith("f:"):
            parent.pop(last[2:], None)
        elif isinstance(parent, list):
            parent_schema = self._schema_at(schema, tuple(parent_path))
            semantics, keys = list_semantics(parent_schema)
            parent[:] = [item for position, item in enumerate(parent)
                         if item_element(item, semantics, keys, position) != last]

    def _schema_at(self, schema: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
        for element in path:
            schema = self.child(schema, element[2:])[0] if element.startswith("f:") else self.items(schema)
        return schema

    def merge(self, live: Any, applied: Any, schema: Mapping[str, Any]) -> Any:
        """`applied` merged into `live`: maps field by field, associative lists and sets item by item,
        atomic values replaced; a null in the applied configuration removes the field."""
        if isinstance(live, dict) and isinstance(applied, dict) and schema.get("x-kubernetes-map-type") != "atomic":
            merged = dict(live)
            for key, value in applied.items():
                if value is None:
                    merged.pop(key, None)
                elif key in merged:
                    merged[key] = self.merge(merged[key], value, self.child(schema, key)[0])
                else:
                    merged[key] = value
            return merged
        if isinstance(live, list) and isinstance(applied, list):
            semantics, keys = list_semantics(schema)
            if semantics == "atomic":
                return applied
            item_schema = self.items(schema)
            merged_items = list(live)
            positions = {item_element(item, semantics, keys, i): i for i, item in enumerate(live)}
            for position, item in enumerate(applied):
                element = item_element(item, semantics, keys, position)
                if element in positions:
                    merged_items[positions[element]] = self.merge(live[positions[element]], item, item_schema)
                else:
                    merged_items.append(item)
            return merged_items
        return applied


def _items_by_element(items: list[Any], semantics: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A list's items by path element; of duplicates the first counts."""
    found: dict[str, Any] = {}
    for position, item in enumerate(items):
        found.setdefault(item_element(item, semantics, keys, position), item)
    return found


def _mismatched(value: Any, as_collection: Any) -> bool:
    """Whether one side holds a value of another type (a scalar where the other has a map)."""
    return as_collection is None and value is not None and value is not ABSENT


def _compare_leaf(old: Any, new: Any, path: Path, comparison: Comparison) -> None:
    if old is ABSENT:
        comparison.added.append(path)
    elif new is ABSENT:
        comparison.removed.append(path)
    elif old != new:
        comparison.modified.append(path)


def _record_presence(old: Any, new: Any, path: Path, comparison: Comparison) -> None:
    if old is ABSENT:
        comparison.added.append(path)
    elif new is ABSENT:
        comparison.removed.append(path)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """A field set as `fieldsV1`: nested objects, `.` where a node is owned besides its children."""
    root: dict[str, Any] = {}
    members = set(paths)
    for path in sorted(members):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in members:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    return {key: _sorted(node[key]) for key in sorted(node, key=lambda k: (k != ".", k))}


def from_fields_v1(fields: Mapping[str, Any], path: Path = ()) -> set[Path]:
    found: set[Path] = set()
    for key, child in fields.items():
        if key == ".":
            found.add(path)
        elif isinstance(child, dict) and child:
            found |= from_fields_v1(child, (*path, key))
        else:
            found.add((*path, key))
    return found


def is_leaf(path: Path, paths: set[Path]) -> bool:
    """Whether no other path in the set lies under this one."""
    return not any(len(other) > len(path) and other[:len(path)] == path for other in paths)
