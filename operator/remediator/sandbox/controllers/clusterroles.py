"""The ClusterRole aggregation controller: an aggregated ClusterRole holds the rules of those it selects.

kube-controller-manager's clusterrole-aggregation controller: a ClusterRole with an
`aggregationRule` gets, as its `rules`, the rules of every ClusterRole matching one of its
`clusterRoleSelectors`, each rule once. Any ClusterRole write re-aggregates them all (there are few).
https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles
"""

from __future__ import annotations

from remediator.sandbox import rbac
from remediator.sandbox.controllers import cluster


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    cluster_roles = world.store.resource_type(rbac.GROUP, "v1", "clusterroles")
    by_name = {role["metadata"]["name"]: role for role in world.store.list(cluster_roles)}
    for role in by_name.values():
        rules = rbac.aggregated_rules(role, by_name)
        if rules is not None and rules != (role.get("rules") or []):
            world.update(cluster_roles, {**role, "rules": rules})
    return None
