"""The DaemonSet controller, as far as the sandbox goes: one node, one ready pod, status only.

No pods are created; the status says the one node runs an up-to-date, ready pod, which is what
`kubectl rollout status daemonset` reads.
https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.sandbox.controllers import cluster, ownership, specs


def daemonset_status(daemonset: Mapping[str, Any]) -> dict[str, Any]:
    """Every count 1 (0 misscheduled), for the current generation."""
    return {
        "currentNumberScheduled": 1,
        "desiredNumberScheduled": 1,
        "numberAvailable": 1,
        "numberMisscheduled": 0,
        "numberReady": 1,
        "observedGeneration": specs.generation(daemonset),
        "updatedNumberScheduled": 1,
    }


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    daemonset = world.find(world.daemonsets, namespace, name)
    if daemonset is not None and not ownership.is_terminating(daemonset):
        world.update_status(world.daemonsets, daemonset, daemonset_status(daemonset))
    return None
