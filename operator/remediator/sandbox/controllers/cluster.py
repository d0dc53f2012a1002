"""The object store as the simulated controllers use it: lookups, ownership, and guarded writes.

Stored objects are shared dicts: every write here deep-copies, changes the copy, and replaces
the stored object carrying its resourceVersion, so a concurrent change is a 409 (the worker
then reconciles the object again) rather than a lost update.
"""

from __future__ import annotations

import copy
import datetime
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from remediator.sandbox import errors, images, nodes, resources, selectors, store
from remediator.sandbox.controllers import containers, events, job_backoff, naming, ownership, service_pods

Object = dict[str, Any]
NODE_NAME = nodes.NAME
HOST_IP = nodes.INTERNAL_IP
NAME_ATTEMPTS = 10
logger = logging.getLogger(__name__)


def changed(obj: Mapping[str, Any], **sections: Mapping[str, Any]) -> Object:
    """`obj` with some fields of its top-level sections (metadata, spec) replaced, to write back: only
    those sections are copied, shallowly; the stored object is never touched and the store deep-copies
    what it keeps (a deep copy here cost more than the rest of a controller's write)."""
    return {**obj, **{name: {**(obj.get(name) or {}), **fields} for name, fields in sections.items()}}


def _object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


class Cluster:
    """Store access shared by the controllers, with the event recorder and the pod IP pool."""

    def __init__(self, object_store: store.ObjectStore, recorder: events.EventRecorder,
                 rng: random.Random | None = None, time_scale: float = 1.0,
                 image_registry: images.Registry = images.EVERY_IMAGE) -> None:
        self.store = object_store
        self.events = recorder
        self.rng = rng or random.Random()
        # Simulated delays (termination grace periods) last this many times their Kubernetes length.
        self.time_scale = time_scale
        # Pod uid -> when (time.monotonic) the kubelet began stopping it (graceful deletion).
        self.termination_starts: dict[str, float] = {}
        # The startup registry; the ConfigMap kube-system/sandbox-images adds entries before it.
        self.image_registry = image_registry
        self._configured_images: tuple[str, images.Registry] = ("", images.Registry())
        # (namespace, name) -> the pod's uid and its containers' runs on the node (the kubelet's memory).
        self.pod_runs: dict[tuple[str, str], tuple[str, dict[str, containers.ContainerRun]]] = {}
        # Images pulled on the node: later pods find them "already present on machine".
        self.present_images: set[str] = set()
        # Job uid -> its failures in a row, for the back-off before a replacement pod (the job controller's memory).
        self.job_backoffs: dict[str, job_backoff.BackoffRecord] = {}
        self.configmaps = object_store.resource_type("", "v1", "configmaps")
        self.secrets = object_store.resource_type("", "v1", "secrets")
        self.pods = object_store.resource_type("", "v1", "pods")
        self.deployments = object_store.resource_type("apps", "v1", "deployments")
        self.replicasets = object_store.resource_type("apps", "v1", "replicasets")
        self.statefulsets = object_store.resource_type("apps", "v1", "statefulsets")
        self.daemonsets = object_store.resource_type("apps", "v1", "daemonsets")
        self.jobs = object_store.resource_type("batch", "v1", "jobs")
        self.namespaces = object_store.resource_type("", "v1", "namespaces")
        self.serviceaccounts = object_store.resource_type("", "v1", "serviceaccounts")
        self.pdbs = object_store.resource_type("policy", "v1", "poddisruptionbudgets")
        self.services = object_store.resource_type("", "v1", "services")
        self.endpoints = object_store.resource_type("", "v1", "endpoints")
        self.endpointslices = object_store.resource_type("discovery.k8s.io", "v1", "endpointslices")
        # Which pods each Service selects (the endpoint controllers' index, fed by pod events).
        self.service_pods = service_pods.ServicePods()
        self._pods_started = 0

    # -- reading ------------------------------------------------------------------------------

    def now(self) -> datetime.datetime:
        return self.store.clock()

    def images(self) -> images.Registry:
        """The registry in force: the ConfigMap's entries (parsed once per version), then the startup file's.

        A ConfigMap that does not parse is ignored (and logged), as a kubelet ignores a bad drop-in.
        """
        found = self.find(self.configmaps, images.CONFIGMAP_NAMESPACE, images.CONFIGMAP_NAME)
        if found is None:
            return self.image_registry
        version = str(found["metadata"].get("resourceVersion", ""))
        if self._configured_images[0] != version:
            text = str((found.get("data") or {}).get(images.CONFIGMAP_KEY) or "")
            try:
                configured = images.from_text(text, f"configmap {images.CONFIGMAP_NAMESPACE}/{images.CONFIGMAP_NAME}")
            except images.RegistryError as error:
                logger.warning("sandbox image registry ignored: %s", error)
                configured = images.Registry()
            self._configured_images = (version, configured)
        return self._configured_images[1] + self.image_registry

    def find(self, resource: resources.ResourceType, namespace: str, name: str) -> Object | None:
        return self.store.find(resource, namespace, name)

    def by_uid(self, uid: str) -> Object | None:
        return self.store.by_uid(uid)

    def owned(self, resource: resources.ResourceType, owner: Mapping[str, Any]) -> list[Object]:
        """Objects in the owner's namespace whose controller is the owner."""
        namespace = owner["metadata"].get("namespace")
        return [obj for obj in self.store.dependents(resource, owner["metadata"]["uid"], namespace)
                if ownership.is_controlled_by(obj, owner)]

    def claim(
        self,
        resource: resources.ResourceType,
        owner: Mapping[str, Any],
        selector: Mapping[str, Any] | None,
        adoptable: Callable[[Object], bool] = lambda obj: True,
    ) -> list[Object]:
        """The owner's objects, after adopting orphans its selector matches (ControllerRefManager).

        An empty, missing or invalid selector adopts nothing: the API server rejects such workloads.
        """
        namespace = owner["metadata"].get("namespace")
        try:
            matcher = selectors.label_selector_from_object(selector) if selector else None
        except selectors.SelectorError:
            matcher = None
        # Only its dependents and the uncontrolled can be the owner's (the informer's owner-UID index).
        candidates = self.store.dependents(resource, owner["metadata"]["uid"], namespace)
        if matcher is not None:
            both = {_object_key(obj): obj for obj in candidates + self.store.uncontrolled(resource, namespace)}
            candidates = [both[key] for key in sorted(both)]
        claimed = []
        for obj in candidates:
            if ownership.is_controlled_by(obj, owner):
                claimed.append(obj)
            elif (matcher is not None and ownership.controller_ref(obj) is None
                  and not ownership.is_terminating(obj) and adoptable(obj)
                  and matcher.matches(obj["metadata"].get("labels") or {})):
                adopted = copy.deepcopy(obj)
                refs = adopted["metadata"].setdefault("ownerReferences", [])
                refs.append(ownership.controller_reference(owner))
                claimed.append(self.store.replace(resource, namespace, obj["metadata"]["name"], adopted))
        return claimed

    # -- writing ------------------------------------------------------------------------------

    def create(self, resource: resources.ResourceType, body: Mapping[str, Any]) -> Object:
        return self.store.create(resource, body, body["metadata"].get("namespace"))

    def create_with_random_name(self, resource: resources.ResourceType, body: Mapping[str, Any],
                                prefix: str) -> Object:
        """Create under `<prefix><5 random chars>`, as the API server does for a generateName."""
        for attempt in range(NAME_ATTEMPTS):
            named = copy.deepcopy(dict(body))
            named["metadata"]["generateName"] = prefix
            named["metadata"]["name"] = prefix + naming.random_suffix(rng=self.rng)
            try:
                return self.create(resource, named)
            except errors.ApiError as error:
                if error.reason != "AlreadyExists" or attempt == NAME_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def update(self, resource: resources.ResourceType, changed: Mapping[str, Any]) -> Object:
        """Replace an object (main endpoint) with a changed copy carrying the read resourceVersion."""
        meta = changed["metadata"]
        return self.store.replace(resource, meta.get("namespace"), meta["name"], changed)

    def update_status(self, resource: resources.ResourceType, obj: Object,
                      status: Mapping[str, Any]) -> Object:
        """Write a status through the status subresource; nothing is written when it is unchanged."""
        if obj.get("status") == status:
            return obj
        changed = {**obj, "status": status}  # the store copies what it keeps
        meta = obj["metadata"]
        return self.store.replace(resource, meta.get("namespace"), meta["name"], changed,
                                  subresource="status")

    def delete(self, resource: resources.ResourceType, obj: Mapping[str, Any]) -> None:
        """Delete an object, guarded by its uid; one that is already gone is fine."""
        meta = obj["metadata"]
        try:
            self.store.delete(resource, meta.get("namespace"), meta["name"],
                              preconditions={"uid": meta["uid"]})
        except errors.ApiError as error:
            # 409: the uid differs, so the object meant is gone and another took its name.
            if error.code not in (404, 409):
                raise

    # -- the node -----------------------------------------------------------------------------

    def allocate_pod_ip(self) -> str:
        """The next pod IP from kind's default pod CIDR, 10.244.0.0/16."""
        self._pods_started += 1
        index = self._pods_started % (254 * 256)
        return f"10.244.{index // 254}.{index % 254 + 1}"
