"""Running the simulated controllers: which run, how store events become work, one worker.

Like kube-controller-manager's informers, a store listener turns every write into keys of the
objects to reconcile (the object itself, its controller, and for orphans the workloads that
could adopt it); one worker task reconciles them one at a time. Reconciles are level-triggered:
each reads the current state and converges it, so coalesced or repeated keys are harmless.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable

from remediator.sandbox import errors, images, resources, selectors, store
from remediator.sandbox.controllers import (
    cluster,
    clusterroles,
    daemonsets,
    deployments,
    disruption,
    events,
    jobs,
    kubelet,
    ownership,
    replicasets,
    service_endpoints,
    service_pods,
    serviceaccounts,
    statefulsets,
    workqueue,
)

logger = logging.getLogger(__name__)

ResourceKey = tuple[str, str]  # (group, plural)
Key = tuple[ResourceKey, str, str]  # resource, namespace, name
# A reconcile converges one object; it returns seconds after which to look again, or None.
Reconcile = Callable[[cluster.Cluster, str, str], float | None]

PODS: ResourceKey = ("", "pods")
DEPLOYMENTS: ResourceKey = ("apps", "deployments")
REPLICASETS: ResourceKey = ("apps", "replicasets")
STATEFULSETS: ResourceKey = ("apps", "statefulsets")
DAEMONSETS: ResourceKey = ("apps", "daemonsets")
JOBS: ResourceKey = ("batch", "jobs")
NAMESPACES: ResourceKey = ("", "namespaces")
SERVICEACCOUNTS: ResourceKey = ("", "serviceaccounts")
CLUSTER_ROLES: ResourceKey = ("rbac.authorization.k8s.io", "clusterroles")
PDBS: ResourceKey = ("policy", "poddisruptionbudgets")
SERVICES: ResourceKey = ("", "services")
# (owner group, owner kind) → the owner's resource, for ownerReferences of what controllers create.
OWNER_KINDS: dict[tuple[str, str], ResourceKey] = {
    ("apps", "Deployment"): DEPLOYMENTS,
    ("apps", "ReplicaSet"): REPLICASETS,
    ("apps", "StatefulSet"): STATEFULSETS,
    ("batch", "Job"): JOBS,
}
# Orphans of a resource are adopted by workloads of these resources whose selector matches.
ADOPTERS: dict[ResourceKey, ResourceKey] = {REPLICASETS: DEPLOYMENTS, PODS: REPLICASETS}
IMMEDIATE_CONFLICT_RETRIES = 5
MAX_BACKOFF = 10.0


@dataclasses.dataclass(frozen=True)
class Simulations:
    """Which controllers run; each can be switched off by a test."""

    deployments: bool = True  # Deployment → ReplicaSets + Deployment status
    replicasets: bool = True  # ReplicaSet → Pods (also replaces deleted pods)
    pods: bool = True  # the scheduler and kubelet: pods become Running/Ready (or finish)
    statefulsets: bool = True  # StatefulSet → Pods name-0..N-1 + status
    daemonsets: bool = True  # DaemonSet status only: one node, one ready pod
    jobs: bool = True  # Jobs run pods and complete or fail
    events: bool = True  # the simulated controllers record Events (ScalingReplicaSet, SuccessfulCreate...)
    serviceaccounts: bool = True  # every namespace gets its `default` ServiceAccount
    clusterroles: bool = True  # aggregated ClusterRoles get the rules of those their selectors match
    disruption: bool = True  # PodDisruptionBudgets get their status from the pods they cover
    endpoints: bool = True  # Services with a selector get EndpointSlices and Endpoints of their pods

    def reconcilers(self) -> dict[ResourceKey, Reconcile]:
        """The reconcile function of every switched-on controller, by the resource it watches."""
        switched: list[tuple[bool, ResourceKey, Reconcile]] = [
            (self.deployments, DEPLOYMENTS, deployments.reconcile),
            (self.replicasets, REPLICASETS, replicasets.reconcile),
            (self.pods, PODS, kubelet.reconcile),
            (self.statefulsets, STATEFULSETS, statefulsets.reconcile),
            (self.daemonsets, DAEMONSETS, daemonsets.reconcile),
            (self.jobs, JOBS, jobs.reconcile),
            (self.serviceaccounts, NAMESPACES, serviceaccounts.reconcile),
            (self.clusterroles, CLUSTER_ROLES, clusterroles.reconcile),
            (self.disruption, PDBS, disruption.reconcile),
            (self.endpoints, SERVICES, service_endpoints.reconcile),
        ]
        return {key: reconcile for enabled, key, reconcile in switched if enabled}


class Controllers:
    """The simulated controllers of one store, started inside a running event loop."""

    def __init__(self, object_store: store.ObjectStore, simulations: Simulations, time_scale: float = 1.0,
                 image_registry: images.Registry = images.EVERY_IMAGE) -> None:
        self.store = object_store
        self.simulations = simulations
        self.cluster = cluster.Cluster(object_store, events.EventRecorder(object_store, simulations.events),
                                       time_scale=time_scale, image_registry=image_registry)
        # Unexpected reconcile errors (bugs), kept for tests to assert on; each is also logged.
        self.failures: list[BaseException] = []
        self._reconcilers = simulations.reconcilers()
        self._queue: workqueue.WorkQueue[Key] = workqueue.WorkQueue()
        self._retries: collections.Counter[Key] = collections.Counter()
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()

    def start(self) -> None:
        """Subscribe to the store, queue every existing object, and start the worker."""
        if self._worker is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue = workqueue.WorkQueue()
        # Pod writes while stopped were not routed: the Services are indexed again as they are reconciled.
        self.cluster.service_pods = service_pods.ServicePods()
        self.store.listeners.append(self._on_write)
        self.resync()
        self._worker = self._loop.create_task(self._work(), name="sandbox-controllers")

    async def stop(self) -> None:
        """Unsubscribe and stop the worker; a reconcile in progress finishes first (they are synchronous)."""
        with contextlib.suppress(ValueError):
            self.store.listeners.remove(self._on_write)
        self._queue.close()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until no reconcile is queued or running and no deleted pod is still terminating.

        Other re-checks scheduled for later (progress deadlines, minReadySeconds, error backoff) do
        not count. Raises TimeoutError when the controllers keep working past the timeout.
        """
        async with asyncio.timeout(timeout):
            while True:
                while not self._queue.idle.is_set():
                    await self._queue.idle.wait()
                starts = self.cluster.termination_starts
                for uid in [uid for uid in starts if self.store.by_uid(uid) is None]:
                    del starts[uid]  # removed meanwhile by a DELETE with gracePeriodSeconds=0
                if not starts:
                    return
                # The kubelet's re-check at the end of the grace period queues work again.
                await asyncio.sleep(0.01)

    def resync(self) -> None:
        """Queue every object the running controllers watch (as an informer's periodic resync does).

        Tests with a fake store clock call this after moving the clock, to have deadlines checked.
        """
        for resource in self.store.registry.all():
            if resource.key in self._reconcilers:
                for obj in self.store.list(resource):
                    meta = obj["metadata"]
                    self._queue.add((resource.key, meta.get("namespace", ""), meta["name"]))

    # -- events to keys -----------------------------------------------------------------------

    def _on_write(self, resource: resources.ResourceType, event: store.WatchEvent) -> None:
        # Called inside every store write: only queue keys here, never write.
        if threading.get_ident() != self._thread and self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_write, resource, event)
            return
        try:
            for key in self._keys_for(resource.key, event):
                self._queue.add(key)
        except Exception:  # a listener must never break the write that called it
            logger.exception("sandbox controllers could not route a %s event", resource.kind)

    def _keys_for(self, resource: ResourceKey, event: store.WatchEvent) -> list[Key]:
        obj = event.object
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace", "")
        keys: list[Key] = []
        if resource in self._reconcilers:
            keys.append((resource, namespace, meta.get("name", "")))
        if resource == PODS and PDBS in self._reconcilers:
            keys.extend(self._budgets_in(namespace))
        if resource == PODS and SERVICES in self._reconcilers:
            services = self.cluster.service_pods.pod_changed(namespace, meta.get("name", ""), meta.get("labels") or {},
                                                             gone=event.type == "DELETED")
            keys.extend((SERVICES, namespace, service) for service in services)
        if resource == SERVICEACCOUNTS and event.type == "DELETED" and NAMESPACES in self._reconcilers:
            keys.append((NAMESPACES, "", namespace))  # a deleted `default` ServiceAccount comes back
        ref = ownership.controller_ref(obj)
        if ref is not None:
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            owner = OWNER_KINDS.get((group, str(ref.get("kind", ""))))
            if owner is not None and owner in self._reconcilers:
                keys.append((owner, namespace, str(ref.get("name", ""))))
            if resource == PODS and event.type == "DELETED":
                keys.extend(self._grand_owner(namespace, str(ref.get("uid", ""))))
        elif resource in ADOPTERS and event.type != "DELETED" and ADOPTERS[resource] in self._reconcilers:
            keys.extend(self._adopters_of(ADOPTERS[resource], namespace, meta.get("labels") or {}))
        return keys

    def _budgets_in(self, namespace: str) -> list[Key]:
        """The namespace's PodDisruptionBudgets: a pod's change may change their status."""
        pdbs = self.store.resource_type("policy", "v1", "poddisruptionbudgets")
        return [(PDBS, namespace, pdb["metadata"]["name"]) for pdb in self.store.list(pdbs, namespace)]

    def _grand_owner(self, namespace: str, owner_uid: str) -> list[Key]:
        """The Deployment of a gone pod's ReplicaSet: a Recreate rollout waits for old pods to be gone
        (the deployment controller's deletePod handler)."""
        owner = self.store.by_uid(owner_uid)
        ref = ownership.controller_ref(owner) if owner is not None else None
        if ref is None or ref.get("kind") != "Deployment" or DEPLOYMENTS not in self._reconcilers:
            return []
        return [(DEPLOYMENTS, namespace, str(ref.get("name", "")))]

    def _adopters_of(self, adopter: ResourceKey, namespace: str, labels: dict[str, str]) -> list[Key]:
        """Workloads whose selector matches an orphan's labels: they may adopt it."""
        resource = next((r for r in self.store.registry.all() if r.key == adopter), None)
        if resource is None:
            return []
        keys = []
        for workload in self.store.list(resource, namespace):
            selector = (workload.get("spec") or {}).get("selector")
            if not selector:
                continue
            try:
                matches = selectors.label_selector_from_object(selector).matches(labels)
            except selectors.SelectorError:  # an invalid selector adopts nothing
                continue
            if matches:
                keys.append((adopter, namespace, workload["metadata"]["name"]))
        return keys

    # -- the worker ---------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                self._reconcile(key)
            finally:
                self._queue.done()
            # Reconciles are synchronous: let the API server answer requests between them.
            await asyncio.sleep(0)

    def _reconcile(self, key: Key) -> None:
        resource, namespace, name = key
        reconcile = self._reconcilers.get(resource)
        if reconcile is None:
            return
        try:
            delay = reconcile(self.cluster, namespace, name)
        except errors.ApiError as error:
            if error.code == 404:  # the object (or its namespace) went away meanwhile
                self._retries.pop(key, None)
            elif error.reason == "Conflict" and self._retries[key] < IMMEDIATE_CONFLICT_RETRIES:
                self._retries[key] += 1
                self._queue.add(key)
            else:
                logger.warning("sandbox controller for %s %s/%s: %s", resource[1], namespace, name,
                               error.message)
                self._back_off(key)
            return
        except Exception as error:
            logger.exception("sandbox controller for %s %s/%s failed", resource[1], namespace, name)
            self.failures.append(error)
            self._back_off(key)
            return
        self._retries.pop(key, None)
        if delay is not None and delay <= 0:
            self._queue.add(key)  # due now: queued at once, so settle() never sees the queue idle between
        elif delay is not None:
            self._queue.add_after(key, delay)

    def _back_off(self, key: Key) -> None:
        # Like the controllers' rate limiter: 5ms doubling to a cap, so a stuck object never spins.
        self._retries[key] += 1
        self._queue.add_after(key, min(MAX_BACKOFF, 0.005 * 2 ** min(self._retries[key], 16)))

    def __repr__(self) -> str:
        enabled = ", ".join(sorted(f"{g}/{p}" if g else p for g, p in self._reconcilers))
        return f"<Controllers for {enabled}; {len(self._queue)} queued>"
