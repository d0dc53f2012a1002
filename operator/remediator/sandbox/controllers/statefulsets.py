"""The StatefulSet controller: pods `<name>-0..N-1`, created in order and rolled over on a template change.

https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/
Revisions are `<name>-<template hash>` as in Kubernetes, but no ControllerRevisions are stored:
a pod the controller recreates always gets the current template, also below a partition.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox.controllers import cluster, naming, ownership, pods, replicasets, specs

Object = dict[str, Any]
COMPONENT = "statefulset-controller"
REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def update_revision(statefulset: Mapping[str, Any]) -> str:
    """The revision of the current template, `<name>-<hash>` (what pods are labelled with)."""
    template = (statefulset.get("spec") or {}).get("template") or {}
    return f"{statefulset['metadata']['name']}-{naming.template_hash(template)}"


def ordinal_of(statefulset: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    """The pod's ordinal when its name is `<statefulset>-<n>`, else None."""
    pattern = re.escape(statefulset["metadata"]["name"]) + r"-(0|[1-9][0-9]*)"
    match = re.fullmatch(pattern, pod["metadata"]["name"])
    return int(match.group(1)) if match else None


def pod_revision(pod: Mapping[str, Any]) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(REVISION_LABEL)


def statefulset_pod(statefulset: Mapping[str, Any], ordinal: int, revision: str) -> Object:
    """Pod `<name>-<ordinal>` of the template, with its identity labels, hostname and subdomain."""
    spec = statefulset.get("spec") or {}
    name = f"{statefulset['metadata']['name']}-{ordinal}"
    body = replicasets.pod_from_template(statefulset, spec.get("template") or {})
    body["metadata"]["name"] = name
    body["metadata"]["labels"].update({REVISION_LABEL: revision, POD_NAME_LABEL: name,
                                       POD_INDEX_LABEL: str(ordinal)})
    body["spec"]["hostname"] = name
    if spec.get("serviceName"):
        body["spec"]["subdomain"] = spec["serviceName"]
    return body


def is_healthy(pod: Mapping[str, Any]) -> bool:
    return pods.phase(pod) == "Running" and pods.is_ready(pod) and not ownership.is_terminating(pod)


def statefulset_status(statefulset: Mapping[str, Any], set_pods: Sequence[Mapping[str, Any]],
                       current_revision: str, now: datetime.datetime) -> dict[str, Any]:
    """The StatefulSet's status; the update revision becomes current once every pod runs it ready."""
    revision = update_revision(statefulset)
    min_ready = specs.min_ready_seconds(statefulset)
    replicas = len(set_pods)
    ready = sum(1 for pod in set_pods if pods.is_ready(pod))
    updated = sum(1 for pod in set_pods if pod_revision(pod) == revision)
    current = sum(1 for pod in set_pods if pod_revision(pod) == current_revision)
    if _strategy(statefulset) == "RollingUpdate" and updated == replicas and ready == replicas:
        current_revision, current = revision, updated
    status: dict[str, Any] = {"observedGeneration": specs.generation(statefulset), "replicas": replicas}
    status.update({field: value for field, value in (("readyReplicas", ready), ("currentReplicas", current),
                                                     ("updatedReplicas", updated)) if value})
    status.update({
        "currentRevision": current_revision,
        "updateRevision": revision,
        "collisionCount": int((statefulset.get("status") or {}).get("collisionCount") or 0),
        "availableReplicas": sum(1 for pod in set_pods if pods.is_available(pod, min_ready, now)),
    })
    return status


def _strategy(statefulset: Mapping[str, Any]) -> str:
    return str(((statefulset.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate")


def _partition(statefulset: Mapping[str, Any]) -> int:
    rolling = ((statefulset.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(rolling.get("partition") or 0)


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    """Create missing ordinals, remove surplus ones from the top, roll pods to the new template."""
    statefulset = world.find(world.statefulsets, namespace, name)
    if statefulset is None or ownership.is_terminating(statefulset):
        return None
    ordered = (statefulset.get("spec") or {}).get("podManagementPolicy", "OrderedReady") == "OrderedReady"
    revision = update_revision(statefulset)
    current_revision = (statefulset.get("status") or {}).get("currentRevision") or revision
    replicas = specs.spec_replicas(statefulset)
    by_ordinal = {ordinal: pod for pod in world.owned(world.pods, statefulset)
                  if (ordinal := ordinal_of(statefulset, pod)) is not None}
    _converge(world, statefulset, by_ordinal, replicas, revision, ordered)
    set_pods = [pod for pod in world.owned(world.pods, statefulset)
                if ordinal_of(statefulset, pod) is not None]
    now = world.now()
    world.update_status(world.statefulsets, statefulset,
                        statefulset_status(statefulset, set_pods, current_revision, now))
    return replicasets.seconds_until_next_available(statefulset, set_pods, now)


def _converge(world: cluster.Cluster, statefulset: Object, by_ordinal: dict[int, Object], replicas: int,
              revision: str, ordered: bool) -> None:
    # OrderedReady waits for each pod to be Running and Ready before touching the next one.
    for ordinal in range(replicas):
        pod = by_ordinal.get(ordinal)
        if pod is not None and pods.phase(pod) in pods.FINISHED_PHASES:
            world.delete(world.pods, pod)  # a finished pod is recreated, as the controller does
            pod = None
        if pod is None:
            created = world.create(world.pods, statefulset_pod(statefulset, ordinal, revision))
            _record(world, statefulset, "SuccessfulCreate", "create", created)
            if ordered:
                return
            continue
        if ordered and not is_healthy(pod):
            return
    condemned = sorted((o for o in by_ordinal if o >= replicas), reverse=True)
    for ordinal in condemned:
        world.delete(world.pods, by_ordinal[ordinal])
        _record(world, statefulset, "SuccessfulDelete", "delete", by_ordinal[ordinal])
        if ordered:
            return
    if _strategy(statefulset) != "RollingUpdate" or condemned:
        return
    # Rolling update: from the highest ordinal down to the partition, one pod at a time.
    for ordinal in range(replicas - 1, _partition(statefulset) - 1, -1):
        pod = by_ordinal.get(ordinal)
        if pod is None:
            return
        if pod_revision(pod) != revision:
            world.delete(world.pods, pod)
            _record(world, statefulset, "SuccessfulDelete", "delete", pod)
            return
        if not is_healthy(pod):
            return


def _record(world: cluster.Cluster, statefulset: Mapping[str, Any], reason: str, verb: str,
            pod: Mapping[str, Any]) -> None:
    world.events.record(statefulset, reason, f"{verb} Pod {pod['metadata']['name']} in StatefulSet "
                        f"{statefulset['metadata']['name']} successful", component=COMPONENT)
