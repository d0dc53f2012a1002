"""The sandbox's object store: what etcd plus the generic registry do in kube-apiserver.

Objects are stored as plain dicts and never mutated in place: every write stores a new dict,
so readers (HTTP responses, watch queues) can hold references without copying.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import datetime
import functools
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from remediator.sandbox import (
    admission_policies,
    builtin_strategies,
    builtin_validation,
    cel_rules,
    defaults,
    discovery,
    errors,
    event_leases,
    event_versions,
    field_errors,
    go_format,
    immutable_fields,
    nodes,
    object_meta,
    pod_termination,
    resources,
    schemas,
    selectors,
    server_side_apply,
)
from remediator.sandbox import managed_fields as ownership  # `managed_fields` names the writes' argument

Object = dict[str, Any]
Clock = Callable[[], datetime.datetime]
# (group, plural): stable across served versions.
ResourceKey = tuple[str, str]
ObjectKey = tuple[str, str]  # (namespace or "", name)

HISTORY_PER_RESOURCE = 20_000
# Like kube-apiserver's watch cache, the history keeps the events of the last 75 s (eventFreshDuration),
# at least 100 of them: a storm's thousands of writes are not held for ever (hundreds of MB).
HISTORY_FRESH_SECONDS = 75.0
HISTORY_MIN = 100
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_GENERATE_NAME_PREFIX = 63 - 5
FOREGROUND_FINALIZER = "foregroundDeletion"
PODS: ResourceKey = ("", "pods")
EVENTS: ResourceKey = ("", "events")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    return _format_second(int(moment.timestamp()))


@functools.lru_cache(maxsize=8)
def _format_second(second: int) -> str:
    # Every write records its time now (managedFields): formatting once per second is enough.
    return datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def group_kind(resource: resources.ResourceType) -> str:
    """`Kind.group` as 422 messages name a kind (`Deployment.apps`, `Pod`)."""
    return f"{resource.kind}.{resource.group}" if resource.group else resource.kind


def _is_resource_version(value: Any) -> bool:
    """Whether a client-sent resourceVersion parses as a non-zero version (etcd3's versioner)."""
    try:
        return int(str(value)) > 0
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    object: Mapping[str, Any]
    old: Mapping[str, Any] | None
    resource_version: int
    published: float = dataclasses.field(default_factory=time.monotonic, compare=False)


@dataclasses.dataclass(frozen=True)
class View:
    """A resource served over another's stored objects, converted both ways (events.k8s.io over core)."""

    storage: tuple[str, str, str]  # group, version, plural of the stored resource
    to_storage: Callable[[Mapping[str, Any]], Object]
    from_storage: Callable[[Mapping[str, Any]], Object]


VIEWS: dict[ResourceKey, View] = {
    ("events.k8s.io", "events"): View(("", "v1", "events"), event_versions.to_core, event_versions.from_core),
}


@dataclasses.dataclass(eq=False)
class Watch:
    """One open watch: events matching its filters are put into its queue."""

    resource: ResourceKey
    namespace: str | None
    label_selector: selectors.LabelSelector | None
    field_selector: selectors.FieldSelector | None
    queue: asyncio.Queue[WatchEvent | None] = dataclasses.field(default_factory=asyncio.Queue)
    # For a watch on a view: how the stored objects are presented.
    present: Callable[[Mapping[str, Any]], Object] | None = None

    def matches(self, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        if self.label_selector is not None and not self.label_selector.matches(
                obj.get("metadata", {}).get("labels") or {}):
            return False
        return self.field_selector is None or self.field_selector.matches(obj)

    def translate(self, event: WatchEvent) -> WatchEvent | None:
        """The event as this watch sees it: objects moving across its selector appear/disappear."""
        now = self.matches(event.object)
        if event.type != "MODIFIED":
            return self.presented(event) if now else None
        before = self.matches(event.old)
        if now and before:
            return self.presented(event)
        if now:
            return self.presented(dataclasses.replace(event, type="ADDED"))
        if before:
            return self.presented(dataclasses.replace(event, type="DELETED"))
        return None

    def presented(self, event: WatchEvent) -> WatchEvent:
        if self.present is None:
            return event
        return dataclasses.replace(event, object=self.present(event.object))


Listener = Callable[[resources.ResourceType, WatchEvent], None]
# Validating admission: (resource, operation, new, old, subresource, dry run) of a write about to be made,
# after validation; raises errors.ApiError to refuse it.
AdmissionCheck = Callable[[resources.ResourceType, str, Object | None, Object | None, str | None, bool], None]


class ObjectStore:
    """In-memory objects of every resource with Kubernetes write semantics.

    Methods raise errors.ApiError with the code the real API server would answer.
    """

    def __init__(self, registry: resources.ResourceRegistry | None = None, clock: Clock = utcnow,
                 event_ttl: float = event_leases.EVENT_TTL_SECONDS) -> None:
        """`event_ttl`: how long an Event lives after its last write, in seconds (kube-apiserver's
        `--event-ttl`, 1 h by default); 0 keeps Events for ever."""
        self.registry = registry or resources.ResourceRegistry()
        self.clock = clock
        self._event_leases = event_leases.Leases(event_ttl)
        self.resource_version = 0
        self._objects: dict[ResourceKey, dict[ObjectKey, Object]] = collections.defaultdict(dict)
        self._history: dict[ResourceKey, collections.deque[WatchEvent]] = collections.defaultdict(
            lambda: collections.deque(maxlen=HISTORY_PER_RESOURCE))
        # The newest resourceVersion that fell out of a resource's history (410 Gone below it).
        self._compacted: dict[ResourceKey, int] = collections.defaultdict(int)
        self._watches: dict[ResourceKey, set[Watch]] = collections.defaultdict(set)
        self._by_uid: dict[str, tuple[resources.ResourceType, ObjectKey]] = {}
        # The garbage collector's graph: owner uid -> uids of the objects whose ownerReferences name it.
        self._dependents: dict[str, set[str]] = {}
        # Objects with no controller ownerReference, per resource: what a controller may adopt.
        self._uncontrolled: dict[ResourceKey, set[ObjectKey]] = collections.defaultdict(set)
        self.listeners: list[Listener] = []
        self.admission_checks: list[AdmissionCheck] = []
        ns_type = self.resource_type("", "v1", "namespaces")
        for name in DEFAULT_NAMESPACES:
            self.create(ns_type, {"metadata": {"name": name}})
        # The kubelet registers its Node, then reports its status (create drops a status).
        node_type = self.resource_type("", "v1", "nodes")
        node = nodes.sandbox_node(format_time(self.clock()), discovery.SERVER_VERSION["gitVersion"])
        registered = self.create(node_type, node)
        self.replace(node_type, None, nodes.NAME, {**registered, "status": node["status"]}, subresource="status")

    # -- lookups ------------------------------------------------------------------------------

    def resource_type(self, group: str, version: str, plural: str) -> resources.ResourceType:
        resource = self.registry.get(group, version, plural)
        if resource is None:
            raise errors.ApiError(404, "the server could not find the requested resource")
        return resource

    def _view(self, resource: resources.ResourceType) -> tuple[View, resources.ResourceType] | None:
        """The view a resource is, and the resource whose objects it presents; None for most."""
        view = VIEWS.get(resource.key)
        return None if view is None else (view, self.resource_type(*view.storage))

    def get(self, resource: resources.ResourceType, namespace: str | None, name: str) -> Object:
        """The stored object (shared: callers must not mutate it). 404 when absent."""
        if (viewed := self._view(resource)) is not None:
            return viewed[0].from_storage(self.get(viewed[1], namespace, name))
        if resource.key == EVENTS:
            self._expire_events()
        obj = self._objects[resource.key].get((namespace or "", name))
        if obj is None:
            raise errors.not_found(resource.group_resource, name, kind=resource.plural, group=resource.group)
        return obj

    def find(self, resource: resources.ResourceType, namespace: str | None, name: str) -> Object | None:
        if (viewed := self._view(resource)) is not None:
            found = self.find(viewed[1], namespace, name)
            return None if found is None else viewed[0].from_storage(found)
        if resource.key == EVENTS:
            self._expire_events()
        return self._objects[resource.key].get((namespace or "", name))

    def dependents(self, resource: resources.ResourceType, owner_uid: str,
                   namespace: str | None = None) -> list[Object]:
        """Objects whose ownerReferences name the owner's uid, in list order (an informer's owner-UID index)."""
        if (viewed := self._view(resource)) is not None:
            return [viewed[0].from_storage(obj) for obj in self.dependents(viewed[1], owner_uid, namespace)]
        keys = [location[1] for location in map(self._by_uid.get, self._dependents.get(owner_uid, ()))
                if location is not None and location[0].key == resource.key]
        return self._in_order(resource, keys, namespace)

    def uncontrolled(self, resource: resources.ResourceType, namespace: str | None = None) -> list[Object]:
        """Objects with no controller ownerReference (orphans a controller may adopt), in list order."""
        if (viewed := self._view(resource)) is not None:
            return [viewed[0].from_storage(obj) for obj in self.uncontrolled(viewed[1], namespace)]
        return self._in_order(resource, self._uncontrolled.get(resource.key, ()), namespace)

    def _in_order(self, resource: resources.ResourceType, keys: Iterable[ObjectKey],
                  namespace: str | None) -> list[Object]:
        objects = self._objects[resource.key]
        return [objects[key] for key in sorted(keys) if not namespace or key[0] == namespace]

    def list(
        self,
        resource: resources.ResourceType,
        namespace: str | None = None,
        label_selector: selectors.LabelSelector | None = None,
        field_selector: selectors.FieldSelector | None = None,
    ) -> list[Object]:
        """Matching objects ordered by namespace and name, as etcd's key order gives them."""
        if (viewed := self._view(resource)) is not None:
            return [viewed[0].from_storage(obj)
                    for obj in self.list(viewed[1], namespace, label_selector, field_selector)]
        if resource.key == EVENTS:
            self._expire_events()
        objects = self._objects[resource.key]
        result = []
        for key in sorted(objects):
            if namespace and key[0] != namespace:
                continue
            obj = objects[key]
            if label_selector is not None and not label_selector.matches(
                    obj["metadata"].get("labels") or {}):
                continue
            if field_selector is not None and not field_selector.matches(obj):
                continue
            result.append(obj)
        return result

    def by_uid(self, uid: str) -> Object | None:
        location = self._by_uid.get(uid)
        return None if location is None else self._objects[location[0].key].get(location[1])

    def namespace_exists(self, name: str) -> bool:
        return ("", name) in self._objects[("", "namespaces")]

    # -- writes -------------------------------------------------------------------------------

    def create(self, resource: resources.ResourceType, body: Mapping[str, Any],
               namespace: str | None = None, *, dry_run: bool = False, field_manager: str | None = None,
               managed_fields: Sequence[Object] | None = None) -> Object:
        """Store a new object: name/generateName, uid, timestamps, versions, built-in defaults; status
        dropped where the status subresource owns it. 409 AlreadyExists, 404 for a missing namespace,
        422 invalid, 500 when the body carries a resourceVersion (as etcd3's store refuses it).
        With dry_run the object is admitted and returned but not stored (no resourceVersion).
        managedFields: those given (a create by apply), else the create recorded as `field_manager`'s."""
        if (viewed := self._view(resource)) is not None:
            view, stored = viewed
            stored_body = view.to_storage(body)
            if resource.key == ("events.k8s.io", "events"):
                self._raise_invalid(resource, stored_body, event_versions.strict_problems(stored_body))
            return view.from_storage(self.create(stored, stored_body, namespace, dry_run=dry_run,
                                                 field_manager=field_manager, managed_fields=managed_fields))
        if resource.key == EVENTS:
            self._expire_events()  # an expired Event's name is free again
        obj = copy.deepcopy(ownership.without_managed_fields(body))
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if _is_resource_version(meta.get("resourceVersion")):
            # An object read from the server and sent back to create is almost always a client bug.
            raise errors.unclassified(500, "resourceVersion should not be set on objects to be created")
        obj["apiVersion"] = resource.api_version
        obj["kind"] = resource.kind
        if resource.namespaced:
            namespace = namespace or meta.get("namespace") or "default"
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.bad_request("the namespace of the provided object does not match the "
                                         "namespace sent on the request")
            meta["namespace"] = namespace
            if not self.namespace_exists(namespace):
                raise errors.not_found("namespaces", namespace, kind="namespaces", group="")
            ns_obj = self.get(self.resource_type("", "v1", "namespaces"), None, namespace)
            if ns_obj["metadata"].get("deletionTimestamp"):
                raise errors.ApiError(
                    403, f'{resource.plural} "{meta.get("name", "")}" is forbidden: unable to create new '
                    f"content in namespace {namespace} because it is being terminated")
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(group_kind(resource), "", [("metadata.name", "FieldValueRequired",
                                     "Required value: name or generateName is required")],
                                     kind=resource.kind, group=resource.group)
            # SimpleNameGenerator keeps names within 63 characters.
            meta["name"] = prefix[:MAX_GENERATE_NAME_PREFIX] + _random_suffix()
        name = meta["name"]
        key = (meta.get("namespace", ""), name)
        if key in self._objects[resource.key]:
            raise errors.already_exists(resource.group_resource, name, kind=resource.plural,
                                        group=resource.group)
        for field in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "managedFields", "selfLink"):
            meta.pop(field, None)
        if "status" in resource.subresources and resource.kind not in ("Namespace",):
            obj.pop("status", None)
        # The uid comes first: a Job's generated selector is made of it (FillObjectMetaSystemFields).
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = format_time(self.clock())
        if not resource.custom:
            defaults.apply(resource.group, resource.kind, obj)
            _check_counts(resource, obj)
            # Recorded as decoded and defaulted, before the strategy's own settings (a Service's IP).
            self._record_fields(resource, None, obj, field_manager, None, managed_fields)
            if resource.key == ("batch", "jobs"):
                defaults.prepare_job_for_create(obj)
            elif resource.key == ("", "pods"):
                obj["status"] = defaults.initial_pod_status(obj)
            self._prepare_builtin(resource, obj, None)
        obj = self._admit(resource, obj)
        if resource.custom:  # with the schema's defaults, which a custom resource gets on decoding
            self._record_fields(resource, None, obj, field_manager, None, managed_fields)
        meta = obj["metadata"]
        if resource.has_generation:
            meta["generation"] = 1
        if resource.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        self._check_admission(resource, "CREATE", obj, None, None, dry_run)
        if dry_run:
            return obj
        self._commit(resource, key, obj, old=None)
        return obj

    def replace(
        self,
        resource: resources.ResourceType,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
        require_resource_version: bool = False,
        bump_generation: bool = True,
        dry_run: bool = False,
        field_manager: str | None = None,
        managed_fields: Sequence[Object] | None = None,
    ) -> Object:
        """Update an object the way PUT (and every PATCH after applying the patch) does.

        The main endpoint keeps the stored status; /status keeps everything but status.
        A resourceVersion in the body must match the stored one (409 otherwise).
        An update that changes nothing stores nothing and produces no event.
        bump_generation=False writes a change the server makes outside the update strategy, which
        leaves metadata.generation alone (the scheduler's pods/binding setting spec.nodeName).
        With dry_run the result is returned but not stored. managedFields: those given (an apply),
        else the write recorded as `field_manager`'s through `subresource` (managed_fields).
        """
        if (viewed := self._view(resource)) is not None:
            view, stored = viewed
            return view.from_storage(self.replace(
                stored, namespace, name, view.to_storage(body), subresource=subresource,
                require_resource_version=require_resource_version, bump_generation=bump_generation,
                dry_run=dry_run, field_manager=field_manager, managed_fields=managed_fields))
        old = self.get(resource, namespace, name)
        # Client-sent managedFields are ignored: the write's own are computed below (and not copied first).
        given = ownership.without_managed_fields(body)
        new_meta = given.get("metadata")
        if not isinstance(new_meta, dict):
            raise errors.bad_request("metadata must be an object")
        given_rv = new_meta.get("resourceVersion")
        if given_rv in (None, ""):
            if require_resource_version:
                raise errors.invalid(group_kind(resource), name, [(
                    "metadata.resourceVersion", "FieldValueInvalid",
                    "Invalid value: 0x0: must be specified for an update")],
                    kind=resource.kind, group=resource.group)
        elif str(given_rv) != old["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.group_resource, name, kind=resource.plural, group=resource.group)
        if new_meta.get("name", name) != name:
            raise errors.bad_request(
                f'the name of the object ({new_meta.get("name")}) does not match the name on the URL ({name})')

        if subresource == "status":
            # Only the status is taken from the body (the controllers' most frequent write). The other
            # sections are the stored object's own, shared rather than copied: stored objects are never
            # mutated, the defaulters only fill in absent fields (all present in a stored object), and
            # the write itself only sets keys of the metadata, which is therefore copied one level.
            new = {**old, "metadata": dict(old["metadata"])}
            if "status" in given:
                # A custom resource's admission prunes what changed into a copy of its own; the built-in
                # defaulters fill the status in place, so they get a copy.
                admitted_by_schema = resource.custom and resource.schema is not None
                new["status"] = given["status"] if admitted_by_schema else copy.deepcopy(given["status"])
            else:
                new.pop("status", None)
        else:
            new = copy.deepcopy(given)
            if "status" in resource.subresources:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            meta = new["metadata"]
            old_meta = old["metadata"]
            # Fields the server owns are restored from the stored object, whatever the client sent.
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                          "generation", "namespace", "name", "resourceVersion"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    listed = ", ".join(go_format.quote(f) for f in sorted(added))
                    raise errors.invalid(group_kind(resource), name, [(
                        "metadata.finalizers", "FieldValueForbidden",
                        "Forbidden: no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers []string{{{listed}}}")], kind=resource.kind, group=resource.group)
        new["apiVersion"] = resource.api_version
        new["kind"] = resource.kind
        if not resource.custom:
            defaults.apply(resource.group, resource.kind, new)
            self._record_fields(resource, old, new, field_manager, subresource, managed_fields)
            if subresource is None:
                _check_counts(resource, new)
            frozen = immutable_fields.problems(resource.group, resource.kind, old, new) if subresource is None else []
            if frozen:
                raise errors.invalid(group_kind(resource), name, frozen, kind=resource.kind, group=resource.group)
        if not resource.custom:
            self._prepare_builtin(resource, new, old)
        new = self._admit(resource, new, old)
        if resource.custom:
            self._record_fields(resource, old, new, field_manager, subresource, managed_fields)
        self._check_admission(resource, "UPDATE", new, old, subresource, dry_run)
        if new == old:
            return old
        if bump_generation and resource.has_generation and self._spec_changed(resource, old, new):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if dry_run:
            return new
        key = (old["metadata"].get("namespace", ""), name)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(resource, key, new)
            return new
        self._commit(resource, key, new, old=old)
        return new

    def delete(
        self,
        resource: resources.ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        grace_period: int | None = None,
    ) -> tuple[Object, bool]:
        """Delete an object, or mark it for deletion while finalizers remain.

        Returns the object and whether it is gone. Dependents are garbage-collected: at once
        (Background), before the owner, which waits with the `foregroundDeletion` finalizer
        (Foreground), or not at all, losing their ownerReference (Orphan). 409 when a uid or
        resourceVersion precondition does not hold. With dry_run nothing changes. A pod that a node
        runs is deleted gracefully: it stays, Terminating, until its kubelet deletes it with
        `grace_period` 0 (see `pod_termination`).
        """
        if (viewed := self._view(resource)) is not None:
            deleted, gone = self.delete(viewed[1], namespace, name, propagation=propagation,
                                        preconditions=preconditions, dry_run=dry_run, grace_period=grace_period)
            return viewed[0].from_storage(deleted), gone
        old = self.get(resource, namespace, name)
        forbidden = builtin_strategies.namespace_deletion_forbidden(name) if resource.kind == "Namespace" else None
        if forbidden is not None:
            raise errors.ApiError(403, f'namespaces "{name}" is forbidden: {forbidden}',
                                  details={"name": name, "kind": "namespaces"})
        meta = old["metadata"]
        for meta_field, field in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted, stored = (preconditions or {}).get(meta_field), meta[meta_field]
            if wanted and wanted != stored:
                raise errors.conflict(resource.group_resource, name, kind=resource.plural, group=resource.group,
                                      because=f"Precondition failed: {field} in precondition: {wanted}, "
                                      f"{field} in object meta: {stored}")
        self._check_admission(resource, "DELETE", None, old, None, dry_run)
        key = (meta.get("namespace", ""), name)
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and self._live_dependents(meta["uid"]) \
                and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        if propagation == "Orphan" and not dry_run:
            self._orphan_dependents(meta["uid"])
        if resource.kind == "Namespace" and not dry_run:
            return self._delete_namespace(resource, key, old), False
        if resource.key == PODS:
            graceful = pod_termination.decide(old, grace_period, self.clock())
            if not graceful.immediate:
                if graceful.marked is None:
                    return old, False
                if not dry_run:
                    self._commit(resource, key, graceful.marked, old=old)
                return graceful.marked, False
        if finalizers:
            if meta.get("deletionTimestamp") and finalizers == meta.get("finalizers"):
                return old, False
            marked = copy.deepcopy(old)
            marked["metadata"]["finalizers"] = finalizers
            if not meta.get("deletionTimestamp"):
                marked["metadata"]["deletionTimestamp"] = format_time(self.clock())
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                # Controllers must see that the object is going away (markAsDeleting).
                if resource.has_generation:
                    marked["metadata"]["generation"] = int(meta.get("generation", 1)) + 1
            if dry_run:
                return marked, False
            self._commit(resource, key, marked, old=old)
            if FOREGROUND_FINALIZER in finalizers:
                self._collect_dependents(meta["uid"], propagation="Foreground")
                return self.by_uid(meta["uid"]) or marked, False
            return marked, False
        if not dry_run:
            self._remove(resource, key, old)
        return old, True

    # -- watching -----------------------------------------------------------------------------

    def watch(self, watch: Watch, since: int | None) -> Iterator[WatchEvent]:
        """Register a watch; returns the events it missed since a resourceVersion.

        With since=None the current objects are replayed as ADDED (like a watch without a version).
        Raises ApiError(410) when the history no longer reaches back to `since`.
        """
        view = VIEWS.get(watch.resource)
        if view is not None:
            watch.resource = self.resource_type(*view.storage).key
            watch.present = view.from_storage
        if watch.resource == EVENTS:
            self._expire_events()
        if since is None:
            resource = self._type_of(watch.resource)
            initial = [watch.presented(WatchEvent("ADDED", obj, None, self.resource_version))
                       for obj in self.list(resource, watch.namespace, watch.label_selector,
                                            watch.field_selector)]
        else:
            if since < self._compacted[watch.resource]:
                raise errors.ApiError(410, f"too old resource version: {since} "
                                      f"({self._compacted[watch.resource] + 1})", reason="Expired")
            initial = []
            for event in self._history[watch.resource]:
                if event.resource_version > since:
                    seen = watch.translate(event)
                    if seen is not None:
                        initial.append(seen)
        self._watches[watch.resource].add(watch)
        return iter(initial)

    def unwatch(self, watch: Watch) -> None:
        self._watches[watch.resource].discard(watch)

    def close_watches(self) -> None:
        for watches in self._watches.values():
            for watch in watches:
                watch.queue.put_nowait(None)
            watches.clear()

    # -- internals ----------------------------------------------------------------------------

    def _type_of(self, key: ResourceKey) -> resources.ResourceType:
        for resource in self.registry.all():
            if resource.key == key:
                return resource
        raise errors.ApiError(404, "the server could not find the requested resource")

    def _prepare_builtin(self, resource: resources.ResourceType, obj: Object, old: Object | None) -> None:
        """A Service's allocations and a core Event's checks (builtin_strategies); 422 on a problem."""
        problems: Sequence[field_errors.FieldError] = ()
        if resource.key == ("", "services"):
            if old is None:
                problems = builtin_strategies.prepare_service_for_create(obj, self._objects[resource.key].values())
            else:
                builtin_strategies.prepare_service_for_update(obj, old)
        elif resource.key == ("", "events"):
            problems = builtin_strategies.event_problems(obj)
        self._raise_invalid(resource, obj, problems)

    def _record_fields(self, resource: resources.ResourceType, old: Object | None, new: Object,
                       field_manager: str | None, subresource: str | None,
                       managed_fields: Sequence[Object] | None) -> None:
        """Set new's managedFields: those an apply computed, or the write recorded as the field manager does."""
        new["metadata"]["managedFields"] = list(managed_fields) if managed_fields is not None else \
            server_side_apply.record_write(old, new, resource=resource, manager=field_manager,
                                           subresource=subresource, now=format_time(self.clock()))
        if not new["metadata"]["managedFields"]:
            del new["metadata"]["managedFields"]

    @staticmethod
    def _raise_invalid(resource: resources.ResourceType, obj: Mapping[str, Any],
                       problems: Sequence[field_errors.FieldError]) -> None:
        if problems:
            raise errors.invalid(group_kind(resource), (obj.get("metadata") or {}).get("name", ""),
                                 [(p.field, p.reason, p.message) for p in problems],
                                 kind=resource.kind, group=resource.group)

    def _check_admission(self, resource: resources.ResourceType, operation: str, new: Object | None,
                         old: Object | None, subresource: str | None, dry_run: bool) -> None:
        for check in self.admission_checks:
            check(resource, operation, new, old, subresource, dry_run)

    def _admit(self, resource: resources.ResourceType, obj: Object, old: Object | None = None) -> Object:
        name = obj["metadata"].get("name", "")
        # RBAC objects are named by path segment rules (`system:discovery`), everything else as DNS subdomains.
        name_errors = schemas.validate_path_segment_name(name) if resource.group == "rbac.authorization.k8s.io" \
            else schemas.validate_object_name(name)
        causes = [(e.field, e.reason, e.message) for e in name_errors]
        causes += object_meta.problems(obj["metadata"])
        if resource.schema is not None and not causes:
            obj, field_errors = _admit_changed_sections(resource.schema, obj, old)
            field_errors += cel_rules.validate_object(resource.rules, obj, old, field_errors)
            causes = [(e.field, e.reason, e.message) for e in field_errors]
        if resource.kind == "CustomResourceDefinition" and not causes:
            causes = _crd_problems(obj)
        if resource.group == admission_policies.GROUP and not causes:
            found = admission_policies.policy_problems(obj) if resource.kind == "ValidatingAdmissionPolicy" \
                else admission_policies.binding_problems(obj)
            causes = [(e.field, e.reason, e.message) for e in found]
        if causes:
            raise errors.invalid(group_kind(resource), obj["metadata"].get("name", ""), causes,
                                 kind=resource.kind, group=resource.group)
        return obj

    @staticmethod
    def _spec_changed(resource: resources.ResourceType, old: Object, new: Object) -> bool:
        """Whether an update bumps metadata.generation (the registry strategies' PrepareForUpdate)."""
        ignored = {"metadata", "status"} if "status" in resource.subresources else {"metadata"}
        return ({k: v for k, v in old.items() if k not in ignored}
                != {k: v for k, v in new.items() if k not in ignored})

    def _next_version(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def _commit(self, resource: resources.ResourceType, key: ObjectKey, obj: Object,
                old: Object | None) -> None:
        rv = self._next_version()
        obj["metadata"]["resourceVersion"] = str(rv)
        if resource.key == EVENTS:
            self._event_leases.grant(key, rv, self.clock().timestamp())
        if resource.kind == "CustomResourceDefinition":
            obj = self._establish_crd(obj)
        self._objects[resource.key][key] = obj
        uid = obj["metadata"]["uid"]
        self._by_uid[uid] = (resource, key)
        self._index_owners(resource, key, uid, old, obj)
        self._publish(resource, WatchEvent("ADDED" if old is None else "MODIFIED", obj, old, rv))

    def _remove(self, resource: resources.ResourceType, key: ObjectKey, last: Object) -> None:
        rv = self._next_version()
        # The object as it went, at the deletion's version: shared with the last stored version (never
        # changed) but for its metadata. A deep copy doubled what the watch history held of every deletion.
        gone = {**last, "metadata": {**last["metadata"], "resourceVersion": str(rv)}}
        del self._objects[resource.key][key]
        uid = gone["metadata"]["uid"]
        self._by_uid.pop(uid, None)
        owner_uids = [ref.get("uid", "") for ref in gone["metadata"].get("ownerReferences") or []]
        self._index_owners(resource, key, uid, last, None)
        self._publish(resource, WatchEvent("DELETED", gone, last, rv))
        for owner_uid in owner_uids:
            self._finish_foreground_deletion(owner_uid)
        if resource.kind == "CustomResourceDefinition":
            self._unregister_crd(gone)
        self._collect_dependents(uid)
        if key[0]:
            self._finish_namespace_if_empty(key[0])

    def _index_owners(self, resource: resources.ResourceType, key: ObjectKey, uid: str,
                      old: Object | None, new: Object | None) -> None:
        """Keep the owner-UID index and the uncontrolled set in step with a write (new None: a removal)."""
        before, after = _owner_uids(old), _owner_uids(new)
        for owner_uid in before - after:
            dependents = self._dependents.get(owner_uid)
            if dependents is not None:
                dependents.discard(uid)
                if not dependents:
                    del self._dependents[owner_uid]
        for owner_uid in after - before:
            self._dependents.setdefault(owner_uid, set()).add(uid)
        uncontrolled = self._uncontrolled[resource.key]
        if new is not None and not any(ref.get("controller") for ref in new["metadata"].get("ownerReferences") or []):
            uncontrolled.add(key)
        else:
            uncontrolled.discard(key)

    def _publish(self, resource: resources.ResourceType, event: WatchEvent) -> None:
        history = self._history[resource.key]
        if len(history) == history.maxlen:
            self._compacted[resource.key] = history[0].resource_version
        history.append(event)
        stale = event.published - HISTORY_FRESH_SECONDS
        while len(history) > HISTORY_MIN and history[0].published < stale:
            self._compacted[resource.key] = history.popleft().resource_version
        for watch in list(self._watches[resource.key]):
            seen = watch.translate(event)
            if seen is not None:
                watch.queue.put_nowait(seen)
        for listener in list(self.listeners):
            listener(resource, event)

    def _expire_events(self) -> None:
        """Delete the Events whose lease ran out (`event_ttl` after their last write), as etcd does when a
        lease expires: watchers see them DELETED. Done before each write and each read of Events."""
        if not self._event_leases.granted:
            return
        events = self._objects[EVENTS]
        for key, resource_version in list(self._event_leases.expired(self.clock().timestamp())):
            obj = events.get(key)
            if obj is not None and obj["metadata"]["resourceVersion"] == str(resource_version):
                self._remove(self._type_of(EVENTS), key, obj)

    def _live_dependents(self, owner_uid: str) -> set[str]:
        return {uid for uid in self._dependents.get(owner_uid, ()) if uid in self._by_uid}

    def _collect_dependents(self, owner_uid: str, propagation: str = "Background") -> None:
        """Cascading deletion: dependents whose other owners are all gone are deleted.

        In the foreground the owner is still there (with deletionTimestamp), so its dependents are
        deleted whatever their other owners, and they delete their own dependents first too.
        """
        foreground = propagation == "Foreground"
        for dependent_uid in list(self._dependents.get(owner_uid, ())):
            location = self._by_uid.get(dependent_uid)
            if location is None:
                continue
            resource, key = location
            dependent = self._objects[resource.key].get(key)
            if dependent is None:
                continue
            owners = [ref.get("uid") for ref in dependent["metadata"].get("ownerReferences") or []]
            if not foreground and any(uid in self._by_uid for uid in owners if uid != owner_uid):
                continue
            if dependent["metadata"].get("deletionTimestamp") and dependent["metadata"].get("finalizers"):
                continue
            self.delete(resource, key[0] or None, key[1], propagation=propagation)
        if foreground:
            self._finish_foreground_deletion(owner_uid)

    def _finish_foreground_deletion(self, owner_uid: str) -> None:
        """Drop an owner's foregroundDeletion finalizer once its last dependent is gone."""
        owner = self.by_uid(owner_uid)
        if owner is None or self._live_dependents(owner_uid):
            return
        finalizers = owner["metadata"].get("finalizers") or []
        if FOREGROUND_FINALIZER not in finalizers or not owner["metadata"].get("deletionTimestamp"):
            return
        resource, key = self._by_uid[owner_uid]
        released = copy.deepcopy(owner)
        released["metadata"]["finalizers"] = [f for f in finalizers if f != FOREGROUND_FINALIZER]
        if not released["metadata"]["finalizers"]:
            del released["metadata"]["finalizers"]
            self._remove(resource, key, released)
        else:
            self._commit(resource, key, released, old=owner)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for dependent_uid in list(self._dependents.get(owner_uid, ())):
            location = self._by_uid.get(dependent_uid)
            if location is None:
                continue
            resource, key = location
            dependent = self._objects[resource.key][key]
            released = copy.deepcopy(dependent)
            released["metadata"]["ownerReferences"] = [
                ref for ref in dependent["metadata"].get("ownerReferences") or []
                if ref.get("uid") != owner_uid]
            if not released["metadata"]["ownerReferences"]:
                del released["metadata"]["ownerReferences"]
            self._commit(resource, key, released, old=dependent)

    def _delete_namespace(self, resource: resources.ResourceType, key: ObjectKey, old: Object) -> Object:
        if not old["metadata"].get("deletionTimestamp"):
            marked = copy.deepcopy(old)
            marked["metadata"]["deletionTimestamp"] = format_time(self.clock())
            marked["status"] = {"phase": "Terminating"}
            self._commit(resource, key, marked, old=old)
            old = marked
        name = key[1]
        for other in self.registry.all():
            if other.namespaced:
                for obj_key in [k for k in self._objects[other.key] if k[0] == name]:
                    if obj_key in self._objects[other.key]:
                        self.delete(other, name, obj_key[1])
        self._finish_namespace_if_empty(name)
        return old

    def _finish_namespace_if_empty(self, name: str) -> None:
        ns_key = ("", "namespaces")
        ns_obj = self._objects[ns_key].get(("", name))
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        for resource_key, objects in self._objects.items():
            if resource_key != ns_key and any(k[0] == name for k in objects):
                return
        self._remove(self._type_of(ns_key), ("", name), ns_obj)

    def _establish_crd(self, crd: Object) -> Object:
        served = resources.from_crd(crd)
        for resource in served:
            self.registry.remove_group_resource(resource.group, resource.plural)
        for resource in served:
            self.registry.add(resource)
        names = crd["spec"]["names"]
        status = crd.setdefault("status", {})
        status["acceptedNames"] = {k: v for k, v in names.items()}
        status["storedVersions"] = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
        now = format_time(self.clock())
        status["conditions"] = [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ]
        return crd

    def _unregister_crd(self, crd: Object) -> None:
        group = crd["spec"]["group"]
        plural = crd["spec"]["names"]["plural"]
        for resource in [r for r in self.registry.all() if r.group == group and r.plural == plural]:
            for key in list(self._objects[resource.key]):
                obj = self._objects[resource.key].get(key)
                if obj is not None:
                    self._remove(resource, key, obj)
        self.registry.remove_group_resource(group, plural)


def _owner_uids(obj: Mapping[str, Any] | None) -> set[str]:
    if obj is None:
        return set()
    return {ref.get("uid", "") for ref in obj["metadata"].get("ownerReferences") or []}


def _admit_changed_sections(schema: Mapping[str, Any], obj: Object, old: Object | None
                            ) -> tuple[Object, list[schemas.FieldError]]:
    """Schema admission of the top-level sections (spec, status...) that differ from the stored object.

    A section equal to the stored one was admitted when it was stored, and admission is deterministic,
    so it is reused as it is: a label patch or a status write does not re-walk the whole spec. This is
    also what CRD validation ratcheting gives: unchanged fields are not validated again.
    """
    if old is None:
        return schemas.admit(schema, obj)
    unchanged = {key for key, value in obj.items()
                 if key not in ("apiVersion", "kind", "metadata") and key in old and old[key] == value}
    if not unchanged:
        return schemas.admit(schema, obj)
    partial = {key: value for key, value in obj.items() if key not in unchanged}
    partial_schema = {**schema, "required": [r for r in schema.get("required") or [] if r not in unchanged]}
    admitted, field_errors = schemas.admit(partial_schema, partial)
    for key in unchanged:
        admitted[key] = old[key]  # stored objects are never mutated, so sharing the section is safe
    return admitted, field_errors


def _check_counts(resource: resources.ResourceType, obj: Object) -> None:
    """400 for a workload count that is not an int32, 422 for a negative one (see builtin_validation)."""
    try:
        found = builtin_validation.problems(resource.group, resource.kind, obj)
    except builtin_validation.DecodeError as e:
        raise errors.bad_request(f'{resource.kind} in version "{resource.version}" cannot be handled as a '
                                 f"{resource.kind}: {e}") from None
    if found:
        raise errors.invalid(group_kind(resource), obj["metadata"].get("name", ""),
                             [(e.field, e.reason, e.message) for e in found], kind=resource.kind, group=resource.group)


def _crd_problems(crd: Object) -> list[tuple[str, str, str]]:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "FieldValueRequired", "Required value")]
    problems: list[tuple[str, str, str]] = []
    for field in ("group", "names", "versions"):
        if not spec.get(field):
            problems.append((f"spec.{field}", "FieldValueRequired", "Required value"))
    names = spec.get("names") or {}
    if names and (not names.get("plural") or not names.get("kind")):
        problems.append(("spec.names", "FieldValueRequired", "Required value: plural and kind"))
    if not problems and crd["metadata"].get("name") != f"{names['plural']}.{spec['group']}":
        problems.append(("metadata.name", "FieldValueInvalid",
                         f'Invalid value: "{crd["metadata"].get("name")}": must be spec.names.plural+"."'
                         "+spec.group"))
    for position, version in enumerate(spec.get("versions") or []):
        schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
        if isinstance(schema, dict):
            at = f"spec.versions[{position}].schema.openAPIV3Schema"
            problems += [(e.field, e.reason, e.message) for e in cel_rules.rule_problems(schema, at)]
    return problems


def _random_suffix() -> str:
    """Five characters from the alphabet generateName uses (utilrand.String: no vowels, no 0/1/3)."""
    return "".join(secrets.choice(NAME_SUFFIX_ALPHABET) for _ in range(5))
