"""Server-side apply: `PATCH` with `application/apply-patch+yaml`, and the managedFields it keeps.

An apply merges the manager's configuration into the object (maps by field, associative lists and
sets by item, atomic values whole, per the schema), removes what the manager applied before and no
longer does (unless another manager owns it), and records the fields the configuration sets as the
manager's (operation Apply). Changing a field another manager owns is a 409 conflict, unless
`force` moves the field to the applier. Once an object has managedFields, every other write is
recorded too (operation Update, by its fieldManager, per subresource) and takes over the fields
it changes. https://kubernetes.io/docs/reference/using-api/server-side-apply/
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import yaml

from remediator.sandbox import builtin_schemas, errors, field_sets, managed_fields, openapi, resources

APPLY_YAML = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
BEFORE_FIRST_APPLY = "before-first-apply"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Metadata the server sets: never part of what a manager owns (the field manager strips it).
SERVER_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "selfLink",
                   "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds")
Path = field_sets.Path


def is_apply(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in (APPLY_YAML, APPLY_CBOR)


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """A built-in schema node with its `$ref` (or single-`$ref` allOf) replaced by the definition."""
    ref = schema.get("$ref")
    if ref is None and isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        ref = schema["allOf"][0].get("$ref")
    if not isinstance(ref, str):
        return schema
    target = builtin_schemas.v3_schema(ref.rpartition("/")[2])
    return _resolve(target) if isinstance(target, Mapping) else field_sets.EMPTY


def schema_of(resource: resources.ResourceType) -> tuple[field_sets.Walker, Mapping[str, Any]]:
    """The walker and root schema of a resource's objects; metadata is ObjectMeta in both cases."""
    walker = field_sets.Walker(_resolve)
    if resource.custom:
        root = dict(resource.schema or {})
        root["properties"] = {**(root.get("properties") or {}), "metadata": {"$ref": OBJECT_META}}
        return walker, root
    root_schema = builtin_schemas.v3_schema(openapi.schema_name(resource))
    return walker, _resolve(root_schema) if isinstance(root_schema, Mapping) else field_sets.EMPTY


def managed_paths(walker: field_sets.Walker, schema: Mapping[str, Any], obj: Mapping[str, Any],
                  *, status_subresource: bool, subresource: str | None) -> set[Path]:
    """The paths of an object a write through (sub)resource can own: server metadata left out, and
    status only through /status (the other fields only through the main endpoint) where there is one."""
    paths = walker.field_set(obj, schema)
    kept = set()
    for path in paths:
        if not path or path[0] in ("f:apiVersion", "f:kind") or path == ("f:metadata",):
            continue
        if path[0] == "f:metadata" and len(path) > 1 and path[1][2:] in SERVER_METADATA:
            continue
        if status_subresource and (path[0] == "f:status") != (subresource == "status"):
            continue
        kept.add(path)
    return kept


def path_string(path: Path) -> str:
    """A path as structured-merge-diff prints it in conflicts: `.spec.containers[name="web"].image`."""
    text = ""
    for element in path:
        kind, value = element[:2], element[2:]
        if kind == "f:":
            text += "." + value
        elif kind == "k:":
            keys = json.loads(value)
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        elif kind == "v:":
            text += f"[={value}]"
        else:
            text += f"[{value}]"
    return text


def _entry_paths(entry: Mapping[str, Any]) -> set[Path]:
    return field_sets.from_fields_v1(entry.get("fieldsV1") or {})


def _manager_label(entry: Mapping[str, Any]) -> str:
    """How kube-apiserver names a manager in a conflict (printManager)."""
    label = json.dumps(entry.get("manager", ""))
    if entry.get("subresource"):
        label += f" with subresource {json.dumps(entry['subresource'])}"
    if entry.get("operation") == "Update":
        label += f" using {entry.get('apiVersion', '')}"
        if entry.get("time"):
            label += f" at {entry['time']}"
    return label


def conflict_error(conflicts: list[tuple[Mapping[str, Any], Path]]) -> errors.ApiError:
    """409 Conflict worded as the field manager's NewConflictError."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {_manager_label(entry)}",
               "field": path_string(path)} for entry, path in conflicts]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {_manager_label(entry)}: {path_string(path)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(_manager_label(entry), []).append(path_string(path))
        lines = []
        for label in sorted(by_manager):
            lines.append(f"conflicts with {label}:")
            lines += [f"- {path}" for path in by_manager[label]]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return errors.ApiError(409, message, reason="Conflict", details={"causes": causes})


def apply(live: Mapping[str, Any] | None, config: Mapping[str, Any], *, resource: resources.ResourceType,
          manager: str, force: bool, now: str, subresource: str | None = None) -> dict[str, Any]:
    """The object after `manager` applies `config` to `live` (None: the object is created), its
    managedFields set. Through /status only the configuration's status counts, through /scale a
    `{"spec": {"replicas": n}}` made of the Scale; each owned as that subresource's.
    Raises the 409 conflict when the configuration changes another manager's fields."""
    walker, schema = schema_of(resource)
    status_subresource = "status" in resource.subresources
    if subresource == "status":
        applied = {k: v for k, v in config.items() if k == "status"}
    else:
        applied = {k: v for k, v in config.items() if not (status_subresource and k == "status")}
    applied_paths = managed_paths(walker, schema, applied, status_subresource=status_subresource,
                                  subresource=subresource)
    if live is None:
        created = copy.deepcopy(dict(applied))
        created.setdefault("metadata", {})["managedFields"] = [managed_fields.new_entry(
            manager, "Apply", resource.api_version, now, field_sets.to_fields_v1(applied_paths), None)]
        return created
    entries = [dict(e) for e in live["metadata"].get("managedFields") or []]
    if not entries:
        # An object no write has been recorded for: its fields belong to one pseudo-manager, as in kube-apiserver.
        owned = managed_paths(walker, schema, live, status_subresource=status_subresource, subresource=None)
        entries = [managed_fields.new_entry(BEFORE_FIRST_APPLY, "Update", resource.api_version, now,
                                            field_sets.to_fields_v1(owned), None)] if owned else []
    mine = next((e for e in entries if managed_fields.is_writer(e, manager, "Apply", subresource)), None)
    conflicts: list[tuple[Mapping[str, Any], Path]] = []
    taken: dict[int, set[Path]] = {}
    for position, entry in enumerate(entries):
        if entry is mine:
            continue
        for path in sorted(applied_paths & _entry_paths(entry)):
            if not field_sets.is_leaf(path, applied_paths):
                continue
            found, current = walker.value_at(live, schema, path)
            if found and current != walker.value_at(applied, schema, path)[1]:
                conflicts.append((entry, path))
                taken.setdefault(position, set()).add(path)
    if conflicts and not force:
        raise conflict_error(conflicts)
    others: set[Path] = set()
    kept_entries: list[dict[str, Any]] = []
    for position, entry in enumerate(entries):
        if entry is mine:
            kept_entries.append(entry)  # replaced below, in its place
            continue
        paths = _entry_paths(entry) - taken.get(position, set())
        if paths:
            kept_entries.append(entry if paths == _entry_paths(entry)
                                else {**entry, "fieldsV1": field_sets.to_fields_v1(paths)})
            others |= paths
    merged = copy.deepcopy(dict(live))
    for path in sorted((_entry_paths(mine) if mine else set()) - applied_paths - others, key=len, reverse=True):
        walker.remove(merged, schema, path)  # applied before, applied no more, owned by no one else
    merged = walker.merge(merged, applied, schema)
    if mine is not None and _entry_paths(mine) == applied_paths:
        now = mine.get("time", now)  # the same fields again: the entry (and its time) stays as it was
    mine_now = managed_fields.new_entry(manager, "Apply", resource.api_version, now,
                                        field_sets.to_fields_v1(applied_paths), subresource)
    merged["metadata"]["managedFields"] = managed_fields.sort_entries(
        [mine_now if entry is mine else entry for entry in kept_entries] + ([] if mine is not None else [mine_now]))
    return dict(merged)


def record_write(old: Mapping[str, Any] | None, new: Mapping[str, Any], *, resource: resources.ResourceType,
                 manager: str | None, subresource: str | None, now: str) -> list[dict[str, Any]]:
    """The managedFields after an ordinary write (old None: a create), see managed_fields."""
    walker, schema = schema_of(resource)
    return managed_fields.record_write(old, new, resource=resource, walker=walker, schema=schema, manager=manager,
                                       subresource=subresource, now=now)


def parse_config(raw: bytes) -> dict[str, Any]:
    """The applied configuration (YAML or JSON); 400 when it is not an object."""
    try:
        config = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error decoding YAML: {e}") from None
    if not isinstance(config, dict):
        raise errors.bad_request("the applied configuration must be an object")
    return config
