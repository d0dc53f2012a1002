"""metadata.managedFields for every write, as kube-apiserver's field manager keeps them.

A create is an update from the kind's zero object; an update, a patch or a write to /status or
/scale compares the stored object with the new one (structured-merge-diff's Updater.Update): the
writer owns what it added or modified (operation Update, its own entry per manager, apiVersion
and subresource, merged with its earlier one and stamped with the time), every other manager
loses those fields and what was removed, and managers left with nothing are dropped. What the
server sets itself (name, uid, resourceVersion...) is owned by no one, and so is status through
the main endpoint, or anything but status through /status, where a kind has that subresource.
The entries are kept as `fieldsV1` trees and changed in place of the paths a write touched, so a
small patch costs as little as the comparison that finds it.
https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from remediator.sandbox import field_sets, resources, zero_objects

DEFAULT_MANAGER = "kube-controller-manager"
# Paths the field manager never records (stripMeta): the server sets them.
STRIPPED: frozenset[field_sets.Path] = frozenset({
    ("f:apiVersion",), ("f:kind",), ("f:metadata",),
    *(("f:metadata", f"f:{name}") for name in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                               "clusterName", "generation", "managedFields", "resourceVersion")),
})
Entry = dict[str, Any]
Tree = dict[str, Any]


def writable(path: field_sets.Path, *, status_subresource: bool, subresource: str | None) -> bool:
    """Whether a write through (sub)resource can own the path: the registry strategies' reset fields."""
    if path in STRIPPED:
        return False
    if status_subresource and path and (path[0] == "f:status") != (subresource == "status"):
        return False
    return True


def record_write(old: Mapping[str, Any] | None, new: Mapping[str, Any], *, resource: resources.ResourceType,
                 walker: field_sets.Walker, schema: Mapping[str, Any], manager: str | None,
                 subresource: str | None, now: str) -> list[Entry]:
    """The managedFields of `new` after `manager` wrote it over `old` (None: a create)."""
    # Neither side's managedFields are compared: they are not fields anyone owns, and walking them costs.
    comparison = walker.compare(
        zero_objects.zero_object(resource, walker.resolve, schema) if old is None else without_managed_fields(old),
        without_managed_fields(new), schema)
    status_subresource = "status" in resource.subresources

    def kept(paths: Iterable[field_sets.Path]) -> list[field_sets.Path]:
        return [p for p in paths if writable(p, status_subresource=status_subresource, subresource=subresource)]

    changed = kept([*comparison.added, *comparison.modified])
    removed = kept(comparison.removed)
    entries: Sequence[Entry] = [] if old is None else old["metadata"].get("managedFields") or []
    writer = manager or DEFAULT_MANAGER
    result: list[Entry] = []
    mine: Tree | None = None
    mine_entry: Entry | None = None
    for entry in entries:
        if is_writer(entry, writer, "Update", subresource) and entry.get("apiVersion") == resource.api_version:
            mine_entry = entry  # the writer's earlier fields: what it changes now is added to them
            mine = _without(entry.get("fieldsV1") or _EMPTY_TREE, removed)
            continue
        tree = _without(entry.get("fieldsV1") or _EMPTY_TREE, [*changed, *removed])
        if tree:
            result.append(entry if tree is entry.get("fieldsV1") else {**entry, "fieldsV1": tree})
    if changed:
        result.append(new_entry(writer, "Update", resource.api_version, now, _with(mine or _EMPTY_TREE, changed),
                                subresource))
    elif mine and mine_entry is not None:
        result.append(mine_entry if mine is mine_entry.get("fieldsV1") else {**mine_entry, "fieldsV1": mine})
    return sort_entries(result)


def without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of the object without metadata.managedFields: what a write copies and changes,
    since its managedFields are computed, never taken from the body."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or "managedFields" not in meta:
        return dict(obj)
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def new_entry(manager: str, operation: str, api_version: str, now: str, fields: Tree,
              subresource: str | None) -> Entry:
    entry: Entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now,
                    "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        entry["subresource"] = subresource
    return entry


def is_writer(entry: Mapping[str, Any], manager: str, operation: str, subresource: str | None) -> bool:
    return (entry.get("manager") == manager and entry.get("operation") == operation
            and (entry.get("subresource") or None) == subresource)


def sort_entries(entries: Iterable[Entry]) -> list[Entry]:
    """kube-apiserver's order: Apply before Update, then by time, manager, apiVersion, subresource."""
    return sorted(entries, key=lambda e: (e.get("operation", ""), e.get("time") or "", e.get("manager", ""),
                                          e.get("apiVersion", ""), e.get("subresource", "")))


# Edits already made: (tree's id, with or without, paths) -> (tree, result). Thousands of objects get the same
# edit of the same (shared) tree: a create of each pod, a status write of each Deployment. The entry holds
# the tree, so its id stays its own; trees and results are never changed. Cleared when full.
_EDITS: dict[tuple[int, bool, tuple[field_sets.Path, ...]], tuple[Tree, Tree]] = {}
EDITS_MAX = 10_000
_EMPTY_TREE: Tree = {}


def _edited(tree: Tree, inserting: bool, paths: Sequence[field_sets.Path]) -> Tree:
    key = (id(tree), inserting, tuple(paths))
    known = _EDITS.get(key)
    if known is not None:
        return known[1]
    if inserting:
        edit = _TreeEdit(tree)
        for path in paths:
            edit.insert(path)
        result = edit.finish()
    else:
        present = [path for path in paths if _is_member(tree, path)]
        result = tree
        if present:
            edit = _TreeEdit(tree)
            for path in present:
                edit.remove(path)
            result = edit.finish()
    if len(_EDITS) >= EDITS_MAX:
        _EDITS.clear()
    _EDITS[key] = (tree, result)
    return result


def _with(tree: Tree, paths: Sequence[field_sets.Path]) -> Tree:
    """The tree with those paths as members (shared with other objects: never to be changed)."""
    return _edited(tree, True, paths)


def _without(tree: Tree, paths: Sequence[field_sets.Path]) -> Tree:
    """The tree without those paths as members; the same tree when it holds none of them."""
    return _edited(tree, False, paths) if paths else tree


def _is_member(tree: Tree, path: field_sets.Path) -> bool:
    node = tree
    for element in path:
        child = node.get(element)
        if child is None:
            return False
        node = child
    return bool(path) and (not node or "." in node)


class _TreeEdit:
    """Changes to a fieldsV1 tree that may be shared with a stored object: only the nodes on the
    changed paths are copied (a small write to a large entry stays cheap), and the nodes that got
    new keys are put back in structured-merge-diff's order: `.`, fields, keys, values, indexes."""

    def __init__(self, tree: Tree) -> None:
        self.root: Tree = dict(tree)
        self._copies: dict[int, Tree] = {id(self.root): self.root}  # holding them keeps their ids unique
        self._unsorted: dict[int, Tree] = {}

    def _child(self, node: Tree, element: str) -> Tree:
        """The node's child at element, copied (once) so that it may be changed; created when absent."""
        child = node.get(element)
        if child is None:
            self._unsorted[id(node)] = node
            child = node[element] = {}
        elif id(child) not in self._copies:
            child = node[element] = dict(child)
        self._copies[id(child)] = child
        return child

    def insert(self, path: field_sets.Path) -> None:
        node = self.root
        for element in path[:-1]:
            known = element in node
            node = self._child(node, element)
            if known and not node:
                node["."] = {}  # a member until now without children: it keeps its own membership
                self._unsorted[id(node)] = node
        if path[-1] in node:
            last = self._child(node, path[-1])
            if last and "." not in last:
                last["."] = {}
                self._unsorted[id(last)] = last
        else:
            self._child(node, path[-1])

    def remove(self, path: field_sets.Path) -> None:
        trail: list[tuple[Tree, str]] = []
        node = self.root
        for element in path:
            trail.append((node, element))
            node = self._child(node, element)
        if "." in node:
            del node["."]
            return
        # A member without children goes, and so do the ancestors it alone kept.
        for parent, element in reversed(trail):
            del parent[element]
            if parent.keys() == {"."}:
                del parent["."]
                return
            if parent:
                return

    def finish(self) -> Tree:
        """The edited tree, its new nodes replaced by equal ones already in use where there are."""
        for node in self._unsorted.values():
            ordered = sorted(node.items(), key=lambda item: _element_order(item[0]))
            node.clear()
            node.update(ordered)
        return _shared(self.root, self._copies)


# Equal fieldsV1 subtrees share one dict across objects and their versions (thousands of pods, Events or
# status writes own the same fields): a node is known by its keys and its children's identities, which
# stay valid while the table holds the node (and so its children). Shared nodes are never changed:
# _TreeEdit copies a node before changing it. Cleared when full, which only loses sharing.
_SHARED: dict[tuple[tuple[str, int], ...], Tree] = {}
SHARED_MAX = 50_000


def _shared(node: Tree, fresh: Mapping[int, Tree]) -> Tree:
    for element, child in list(node.items()):
        if id(child) in fresh or not child:
            shared = _shared(child, fresh)
            if shared is not child:
                node[element] = shared
    signature = tuple((element, id(child)) for element, child in node.items())
    found = _SHARED.get(signature)
    if found is None:
        if len(_SHARED) >= SHARED_MAX:
            _SHARED.clear()
        found = _SHARED[signature] = node
    return found


def _element_order(element: str) -> tuple[int, Any]:
    kind, text = element[:2], element[2:]
    if element == ".":
        return (0, "")
    if kind == "f:":
        return (1, text)
    if kind == "i:":
        return (4, int(text) if text.isdigit() else 0)
    value = json.loads(text)
    if kind == "k:" and isinstance(value, dict):
        return (2, [(name, _value_order(value[name])) for name in sorted(value)])
    return (3, _value_order(value))


def _value_order(value: Any) -> tuple[int, Any]:
    """Values ordered as value.Compare orders them: null, then numbers, strings, booleans, others."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (3, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (4, json.dumps(value, sort_keys=True))
