"""The ClusterRoles and ClusterRoleBindings every cluster starts with (a subset of the bootstrap policy).

kube-apiserver creates these on start (plugin/pkg/auth/authorizer/rbac/bootstrappolicy): cluster-admin
for `system:masters`, discovery and self-reviews for every authenticated user, and the user-facing
`admin`, `edit` and `view` roles aggregated from `system:aggregate-to-*` by label. The aggregated
rules here cover the kinds the sandbox serves.
"""

from __future__ import annotations

from typing import Any

BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _cluster_role(name: str, rules: list[dict[str, Any]], *, labels: dict[str, str] | None = None,
                  aggregate_from: str | None = None) -> dict[str, Any]:
    role: dict[str, Any] = {"metadata": {"name": name, "labels": {**BOOTSTRAP_LABELS, **(labels or {})},
                                         "annotations": dict(AUTOUPDATE)}, "rules": rules}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"{AGGREGATE_TO}{aggregate_from}": "true"}}]}
    return role


def _binding(name: str, role: str, groups: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(AUTOUPDATE)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]}


_VIEWABLE_CORE = ["configmaps", "endpoints", "events", "limitranges", "namespaces", "namespaces/status",
                  "persistentvolumeclaims", "persistentvolumeclaims/status", "pods", "pods/log", "pods/status",
                  "resourcequotas", "resourcequotas/status", "serviceaccounts", "services", "services/status"]
_WORKLOADS = ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
              "replicasets/scale", "statefulsets", "statefulsets/scale"]

CLUSTER_ROLES: list[dict[str, Any]] = [
    _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
    _cluster_role("system:discovery", [{"nonResourceURLs": [
        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
        "/version", "/version/"], "verbs": ["get"]}]),
    _cluster_role("system:public-info-viewer", [{"nonResourceURLs": [
        "/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
    _cluster_role("system:basic-user", [
        _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
        _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"])]),
    _cluster_role("admin", [], aggregate_from="admin"),
    _cluster_role("edit", [], labels={f"{AGGREGATE_TO}admin": "true"}, aggregate_from="edit"),
    _cluster_role("view", [], labels={f"{AGGREGATE_TO}edit": "true"}, aggregate_from="view"),
    _cluster_role("system:aggregate-to-admin", [
        _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
        _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], [*WRITE, *READ])],
        labels={f"{AGGREGATE_TO}admin": "true"}),
    _cluster_role("system:aggregate-to-edit", [
        _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
        _rule([""], ["pods/eviction", "serviceaccounts/token"], ["create"]),
        _rule([""], ["configmaps", "events", "persistentvolumeclaims", "secrets", "serviceaccounts", "services",
                     "services/proxy"], WRITE),
        _rule([""], ["secrets"], READ),
        _rule([""], ["serviceaccounts"], ["impersonate"]),
        _rule(["apps"], _WORKLOADS, WRITE),
        _rule(["batch"], ["cronjobs", "jobs"], WRITE),
        _rule(["policy"], ["poddisruptionbudgets"], WRITE),
        _rule(["coordination.k8s.io"], ["leases"], WRITE)],
        labels={f"{AGGREGATE_TO}edit": "true"}),
    _cluster_role("system:aggregate-to-view", [
        _rule([""], _VIEWABLE_CORE, READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        _rule(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                         "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                         "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"], READ),
        _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
        _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
        _rule(["coordination.k8s.io"], ["leases"], READ)],
        labels={f"{AGGREGATE_TO}view": "true"}),
]

CLUSTER_ROLE_BINDINGS: list[dict[str, Any]] = [
    _binding("cluster-admin", "cluster-admin", ["system:masters"]),
    _binding("system:discovery", "system:discovery", ["system:authenticated"]),
    _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
    _binding("system:public-info-viewer", "system:public-info-viewer",
             ["system:authenticated", "system:unauthenticated"]),
]
