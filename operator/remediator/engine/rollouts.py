"""Whether a workload's rollout is complete, the way `kubectl rollout status` decides it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rollout_status(workload: Mapping[str, Any]) -> tuple[bool, str]:
    """(complete, message) for a Deployment, StatefulSet or DaemonSet object.

    Complete when the controller has seen the latest generation and every desired replica is
    updated and available (kubectl's rollout status logic; ProgressDeadlineExceeded is reported).
    """
    kind = workload.get("kind", "Deployment")
    meta = workload.get("metadata") or {}
    spec = workload.get("spec") or {}
    status = workload.get("status") or {}
    name = f"{str(kind).lower()}/{meta.get('name', '')}"
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, f"waiting for {name}'s spec update to be observed"
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        available = int(status.get("numberAvailable") or 0)
        if updated < desired or available < desired:
            return False, f"{name}: {updated} of {desired} updated, {available} available"
        return True, f"{name} rolled out"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return False, f"{name} exceeded its progress deadline"
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or status.get("readyReplicas") or 0)
    if updated < desired:
        return False, f"{name}: {updated} of {desired} new replicas updated"
    if replicas > updated:
        return False, f"{name}: {replicas - updated} old replicas pending termination"
    if available < updated:
        return False, f"{name}: {available} of {updated} updated replicas available"
    return True, f"{name} successfully rolled out"
