"""The ReplicaSet controller: keeps spec.replicas pods of its template, and counts them in its status.

https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox.controllers import cluster, ownership, pods, specs

Object = dict[str, Any]
COMPONENT = "replicaset-controller"


def pod_from_template(owner: Mapping[str, Any], template: Mapping[str, Any]) -> Object:
    """A pod for a controller to create: the template's labels, annotations, finalizers and spec,
    owned by the controller (controller.GetPodFromTemplate). The name is left to the caller."""
    template_meta = template.get("metadata") or {}
    metadata: dict[str, Any] = {
        "namespace": owner["metadata"].get("namespace", "default"),
        "labels": dict(template_meta.get("labels") or {}),
        "ownerReferences": [ownership.controller_reference(owner)],
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        metadata["finalizers"] = list(template_meta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": copy.deepcopy(dict(template.get("spec") or {}))}


def replicaset_status(replica_set: Mapping[str, Any], active_pods: Sequence[Mapping[str, Any]],
                      now: datetime.datetime) -> dict[str, Any]:
    """The ReplicaSet's status from its active pods (replicaset.calculateStatus); zero counts omitted.

    availableReplicas counts pods ready for at least spec.minReadySeconds.
    """
    labels = specs.template_labels(replica_set)
    min_ready = specs.min_ready_seconds(replica_set)
    counts = {
        "fullyLabeledReplicas": sum(
            1 for pod in active_pods
            if all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())),
        "readyReplicas": sum(1 for pod in active_pods if pods.is_ready(pod)),
        "availableReplicas": sum(1 for pod in active_pods if pods.is_available(pod, min_ready, now)),
    }
    status: dict[str, Any] = {"replicas": len(active_pods)}
    status.update({field: value for field, value in counts.items() if value})
    status["observedGeneration"] = specs.generation(replica_set)
    kept = (replica_set.get("status") or {}).get("conditions")
    if kept:
        status["conditions"] = copy.deepcopy(kept)
    return status


def seconds_until_next_available(replica_set: Mapping[str, Any], active_pods: Sequence[Mapping[str, Any]],
                                 now: datetime.datetime) -> float | None:
    """When the next ready pod passes minReadySeconds and counts as available; None if none waits."""
    min_ready = specs.min_ready_seconds(replica_set)
    waits = [pods.seconds_until_available(pod, min_ready, now) for pod in active_pods]
    pending = [wait for wait in waits if wait]
    return min(pending) if pending else None


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    """Create or delete pods until spec.replicas active pods match, then write the status."""
    replica_set = world.find(world.replicasets, namespace, name)
    if replica_set is None or ownership.is_terminating(replica_set):
        return None
    claimed = world.claim(world.pods, replica_set, (replica_set.get("spec") or {}).get("selector"),
                          adoptable=pods.is_active)
    active = [pod for pod in claimed if pods.is_active(pod)]
    surplus = len(active) - specs.spec_replicas(replica_set)
    template = (replica_set.get("spec") or {}).get("template") or {}
    for _ in range(-surplus):
        pod = world.create_with_random_name(world.pods, pod_from_template(replica_set, template),
                                            f"{name}-")
        world.events.record(replica_set, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                            component=COMPONENT)
    for doomed in pods.deletion_order(active)[:max(0, surplus)]:
        world.delete(world.pods, doomed)
        world.events.record(replica_set, "SuccessfulDelete", f"Deleted pod: {doomed['metadata']['name']}",
                            component=COMPONENT)
    if surplus:
        active = [pod for pod in world.owned(world.pods, replica_set) if pods.is_active(pod)]
    now = world.now()
    world.update_status(world.replicasets, replica_set, replicaset_status(replica_set, active, now))
    return seconds_until_next_available(replica_set, active, now)
