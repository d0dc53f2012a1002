"""The ServiceAccount controller: every active namespace has a ServiceAccount named `default`.

kube-controller-manager creates it when a namespace appears, and again if it is deleted.
https://kubernetes.io/docs/concepts/security/service-accounts/#default-service-accounts
"""

from __future__ import annotations

from remediator.sandbox import errors
from remediator.sandbox.controllers import cluster

DEFAULT = "default"


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    """`name` is a namespace (cluster-scoped: `namespace` is empty); give it its default ServiceAccount."""
    ns = world.find(world.namespaces, "", name)
    if ns is None or ns["metadata"].get("deletionTimestamp"):
        return None
    if world.find(world.serviceaccounts, name, DEFAULT) is None:
        try:
            world.create(world.serviceaccounts, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                 "metadata": {"name": DEFAULT, "namespace": name}})
        except errors.ApiError as error:
            if error.reason != "AlreadyExists":
                raise
    return None
