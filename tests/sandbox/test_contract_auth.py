"""Contract: with `--auth`, requests are authenticated by bearer token and authorised by RBAC.

https://kubernetes.io/docs/reference/access-authn-authz/authentication/
https://kubernetes.io/docs/reference/access-authn-authz/rbac/
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import kubernetes.client
import kubernetes.utils
import pytest

from remediator.sandbox import runner

from .auth_support import as_token, as_user
from .support import CONFIGMAPS, DEPLOYMENTS, MERGE, template

RBAC = "/apis/rbac.authorization.k8s.io/v1"
SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSRR = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SERVICEACCOUNTS = "/api/v1/namespaces/default/serviceaccounts"


async def apply(admin: httpx.AsyncClient, *objects: dict[str, Any]) -> None:
    for obj in objects:
        kind = obj["kind"]
        plural = {"Role": "roles", "RoleBinding": "rolebindings", "ClusterRole": "clusterroles",
                  "ClusterRoleBinding": "clusterrolebindings"}[kind]
        namespace = obj["metadata"].get("namespace")
        if namespace:
            await admin.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})  # 409 when it exists
        path = f"{RBAC}/namespaces/{namespace}/{plural}" if namespace else f"{RBAC}/{plural}"
        response = await admin.post(path, json={"apiVersion": "rbac.authorization.k8s.io/v1", **obj})
        assert response.status_code == 201, response.text


def role(name: str, rules: list[dict[str, Any]], namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": "Role" if namespace else "ClusterRole", "metadata": {**meta, **extra.pop("metadata", {})},
            "rules": rules, **extra}


def binding(name: str, role_kind: str, role_name: str, subjects: list[dict[str, Any]],
            namespace: str | None = "default") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": "RoleBinding" if namespace else "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": subjects}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


# -- authentication -----------------------------------------------------------------------------------


async def test_no_token_or_an_unknown_token_is_401(secured: runner.RunningSandbox) -> None:
    """Anonymous requests are off: no credentials, or bad ones, are Unauthorized."""
    for token in (None, "not-a-token", "a.b.c"):
        async with as_token(secured, token) as client:
            response = await client.get(CONFIGMAPS)
        assert response.status_code == 401
        assert response.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


async def test_the_kubeconfig_token_is_the_admin_in_system_masters(secured: runner.RunningSandbox,
                                                                   admin: httpx.AsyncClient) -> None:
    """`kubectl auth whoami`'s SelfSubjectReview; cluster-admin is bound to system:masters by default."""
    assert secured.kubeconfig()["users"][0]["user"]["token"] == secured.admin_token
    response = await admin.post(WHOAMI, json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert response.status_code == 201
    assert response.json()["status"]["userInfo"] == {"username": "sandbox-admin",
                                                     "groups": ["system:masters", "system:authenticated"]}
    assert (await admin.post(CONFIGMAPS, json={"metadata": {"name": "c"}})).status_code == 201


async def test_a_service_account_token_from_token_request(secured: runner.RunningSandbox,
                                                          admin: httpx.AsyncClient) -> None:
    """TokenRequest issues a token authenticating as the ServiceAccount, until the account is deleted.

    https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-request-v1/
    """
    await admin.post(SERVICEACCOUNTS, json={"metadata": {"name": "robot"}})
    response = await admin.post(f"{SERVICEACCOUNTS}/robot/token", json={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
    assert response.status_code == 201
    issued = response.json()
    assert issued["kind"] == "TokenRequest" and issued["spec"]["expirationSeconds"] == 3600
    async with as_token(secured, issued["status"]["token"]) as robot:
        me = (await robot.post(WHOAMI, json={})).json()["status"]["userInfo"]
        assert me["username"] == "system:serviceaccount:default:robot"
        assert me["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
        assert (await admin.delete(f"{SERVICEACCOUNTS}/robot")).status_code == 200
        assert (await robot.post(WHOAMI, json={})).status_code == 401


# -- authorization: the RBAC documentation's examples --------------------------------------------------

DOC_POLICY = [
    # Role example: read pods in "default"; RoleBinding example: to user jane
    role("pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]),
    binding("read-pods", "Role", "pod-reader", [user("jane")]),
    # ClusterRole example: read secrets; ClusterRoleBinding example: to the group manager
    role("secret-reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}],
         namespace=None),
    binding("read-secrets-global", "ClusterRole", "secret-reader", [group("manager")], namespace=None),
    # a RoleBinding naming a ClusterRole grants it in its namespace only: dave in "development"
    binding("read-secrets", "ClusterRole", "secret-reader", [user("dave")], namespace="development"),
    # resourceNames: one ConfigMap
    role("configmap-updater", [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["my-configmap"],
                                "verbs": ["update", "get"]}]),
    binding("update-my-configmap", "Role", "configmap-updater", [user("carol")]),
    # subresources: scale deployments, not the deployments themselves
    role("scaler", [{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]}]),
    binding("scale", "Role", "scaler", [{"kind": "ServiceAccount", "name": "autoscaler", "namespace": "default"}]),
    # wildcards, and every ServiceAccount of a namespace by group
    role("everything-in-apps", [{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]),
    binding("qa-apps", "Role", "everything-in-apps", [group("system:serviceaccounts:qa")]),
    # nonResourceURLs, with a trailing wildcard
    role("health-checker", [{"nonResourceURLs": ["/healthz", "/healthz/*"], "verbs": ["get"]}], namespace=None),
    binding("health", "ClusterRole", "health-checker", [user("probe")], namespace=None),
]

QA_SA = ("system:serviceaccount:qa:builder", ["system:serviceaccounts", "system:serviceaccounts:qa"])


@pytest.mark.parametrize(("subject", "attributes", "allowed"), [
    (("jane", []), {"verb": "get", "resource": "pods", "namespace": "default"}, True),
    (("jane", []), {"verb": "watch", "resource": "pods", "namespace": "default"}, True),
    (("jane", []), {"verb": "delete", "resource": "pods", "namespace": "default"}, False),
    (("jane", []), {"verb": "get", "resource": "pods", "namespace": "other"}, False),
    (("jane", []), {"verb": "get", "resource": "secrets", "namespace": "default"}, False),
    (("ann", ["manager"]), {"verb": "list", "resource": "secrets", "namespace": "anywhere"}, True),
    (("ann", ["manager"]), {"verb": "list", "resource": "secrets"}, True),
    (("ann", ["manager"]), {"verb": "create", "resource": "secrets", "namespace": "default"}, False),
    (("dave", []), {"verb": "get", "resource": "secrets", "namespace": "development"}, True),
    (("dave", []), {"verb": "get", "resource": "secrets", "namespace": "default"}, False),
    (("dave", []), {"verb": "list", "resource": "secrets"}, False),
    (("carol", []), {"verb": "get", "resource": "configmaps", "namespace": "default", "name": "my-configmap"}, True),
    (("carol", []), {"verb": "get", "resource": "configmaps", "namespace": "default", "name": "other"}, False),
    (("carol", []), {"verb": "list", "resource": "configmaps", "namespace": "default"}, False),
    (("system:serviceaccount:default:autoscaler", []),
     {"verb": "patch", "group": "apps", "resource": "deployments", "subresource": "scale", "namespace": "default"},
     True),
    (("system:serviceaccount:default:autoscaler", []),
     {"verb": "patch", "group": "apps", "resource": "deployments", "namespace": "default"}, False),
    (QA_SA, {"verb": "delete", "group": "apps", "resource": "statefulsets", "namespace": "default"}, True),
    (QA_SA, {"verb": "delete", "group": "", "resource": "pods", "namespace": "default"}, False),
    (("probe", []), {"nonResource": True, "verb": "get", "path": "/healthz/etcd"}, True),
    (("probe", []), {"nonResource": True, "verb": "post", "path": "/healthz"}, False),
    (("probe", []), {"nonResource": True, "verb": "get", "path": "/metrics"}, False),
    (("anyone", ["system:authenticated"]), {"nonResource": True, "verb": "get", "path": "/apis/apps"}, True),
    (("root", ["system:masters"]), {"verb": "delete", "resource": "nodes"}, True),
])
async def test_the_rbac_documentation_examples(admin: httpx.AsyncClient, subject: tuple[str, list[str]],
                                               attributes: dict[str, Any], allowed: bool) -> None:
    """https://kubernetes.io/docs/reference/access-authn-authz/rbac/#role-and-clusterrole and the
    sections on RoleBinding/ClusterRoleBinding, referring to resources, and referring to subjects."""
    await apply(admin, *DOC_POLICY)
    spec: dict[str, Any] = {"user": subject[0], "groups": subject[1]}
    if attributes.pop("nonResource", False):
        spec["nonResourceAttributes"] = attributes
    else:
        spec["resourceAttributes"] = attributes
    response = await admin.post(SAR, json={"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                                           "spec": spec})
    assert response.status_code == 201
    assert response.json()["status"]["allowed"] is allowed


async def test_a_denied_request_is_403_worded_like_kube_apiserver(secured: runner.RunningSandbox,
                                                                  admin: httpx.AsyncClient) -> None:
    """The message names the resource, the user, the verb, the group and the namespace or cluster scope."""
    await apply(admin, *DOC_POLICY)
    async with as_user(secured, "jane") as jane:
        assert (await jane.get("/api/v1/namespaces/default/pods")).status_code == 200
        response = await jane.get(f"{CONFIGMAPS}/settings")
        assert response.status_code == 403
        assert response.json() == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'configmaps "settings" is forbidden: User "jane" cannot get resource "configmaps" in API group '
                       '"" in the namespace "default"',
            "reason": "Forbidden", "details": {"name": "settings", "kind": "configmaps"}, "code": 403}
        response = await jane.get(f"{DEPLOYMENTS}/web/scale")
        assert response.json()["message"] == ('deployments.apps "web" is forbidden: User "jane" cannot get resource '
                                              '"deployments/scale" in API group "apps" in the namespace "default"')
        response = await jane.get(f"{RBAC}/clusterroles")
        assert response.json()["message"] == ('clusterroles.rbac.authorization.k8s.io is forbidden: User "jane" '
                                              'cannot list resource "clusterroles" in API group '
                                              '"rbac.authorization.k8s.io" at the cluster scope')
    await apply(admin, binding("dangling", "Role", "missing", [user("jane")]))
    async with as_user(secured, "jane") as jane:
        response = await jane.delete(f"{CONFIGMAPS}/settings")
        assert response.json()["message"].endswith(
            'in the namespace "default": RBAC: role.rbac.authorization.k8s.io "missing" not found')


async def test_a_subresource_rule_allows_the_subresource_only(secured: runner.RunningSandbox,
                                                              admin: httpx.AsyncClient) -> None:
    """`deployments/scale` lets a ServiceAccount scale a Deployment, not edit it."""
    await apply(admin, *DOC_POLICY)
    deployment = {"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "shop"}},
                                                         "template": template()}}
    assert (await admin.post(DEPLOYMENTS, json=deployment)).status_code == 201
    await admin.post(SERVICEACCOUNTS, json={"metadata": {"name": "autoscaler"}})
    token = (await admin.post(f"{SERVICEACCOUNTS}/autoscaler/token", json={})).json()["status"]["token"]
    async with as_token(secured, token) as autoscaler:
        scaled = await autoscaler.patch(f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": 3}}, headers=MERGE)
        assert scaled.status_code == 200, scaled.text
        edited = await autoscaler.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 4}}, headers=MERGE)
        assert edited.status_code == 403
    assert (await admin.get(f"{DEPLOYMENTS}/web")).json()["spec"]["replicas"] == 3


async def test_an_aggregated_cluster_role_gets_the_rules_of_those_it_selects(
        secured: runner.RunningSandbox, admin: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/access-authn-authz/rbac/#aggregated-clusterroles"""
    label = {"rbac.example.com/aggregate-to-monitoring": "true"}
    await apply(admin,
                role("monitoring", [], namespace=None,
                     aggregationRule={"clusterRoleSelectors": [{"matchLabels": label}]}),
                role("monitoring-endpoints", [{"apiGroups": [""], "resources": ["services", "endpoints", "pods"],
                                               "verbs": ["get", "list", "watch"]}], namespace=None,
                     metadata={"labels": label}),
                binding("monitor", "ClusterRole", "monitoring", [user("mon")], namespace=None))
    await secured.controllers.settle()
    stored = (await admin.get(f"{RBAC}/clusterroles/monitoring")).json()
    assert stored["rules"] == [{"apiGroups": [""], "resources": ["services", "endpoints", "pods"],
                                "verbs": ["get", "list", "watch"]}]
    async with as_user(secured, "mon") as mon:
        assert (await mon.get("/api/v1/namespaces/default/services")).status_code == 200
        assert (await mon.get(CONFIGMAPS)).status_code == 403
    # the default user-facing roles are aggregated the same way
    view = (await admin.get(f"{RBAC}/clusterroles/view")).json()
    assert any("apps" in rule["apiGroups"] and "deployments" in rule["resources"] for rule in view["rules"])


async def test_the_view_role_reads_endpoints_and_endpointslices_and_writes_neither(
        secured: runner.RunningSandbox, admin: httpx.AsyncClient) -> None:
    """`view` reads discovery.k8s.io endpointslices and v1 endpoints, as in kube-apiserver's bootstrap
    policy; creating Endpoints is refused to it."""
    await apply(admin, binding("jane-views", "ClusterRole", "view", [user("jane")]))
    await secured.controllers.settle()
    async with as_user(secured, "jane") as jane:
        assert (await jane.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices")).status_code == 200
        assert (await jane.get("/api/v1/namespaces/default/endpoints")).status_code == 200
        response = await jane.post("/api/v1/namespaces/default/endpoints", json={"metadata": {"name": "x"}})
        assert response.status_code == 403


# -- impersonation ----------------------------------------------------------------------------------


async def test_impersonation_needs_the_impersonate_verb(secured: runner.RunningSandbox,
                                                        admin: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation"""
    await apply(admin, *DOC_POLICY)
    as_jane = {"Impersonate-User": "jane"}
    assert (await admin.get("/api/v1/namespaces/default/pods", headers=as_jane)).status_code == 200
    response = await admin.get(CONFIGMAPS, headers=as_jane)
    assert response.status_code == 403 and 'User "jane" cannot list' in response.json()["message"]
    me = (await admin.post(WHOAMI, json={}, headers={**as_jane, "Impersonate-Group": "manager"})).json()
    assert me["status"]["userInfo"] == {"username": "jane", "groups": ["manager", "system:authenticated"]}
    async with as_user(secured, "dave") as dave:
        response = await dave.get(CONFIGMAPS, headers=as_jane)
        assert response.status_code == 403
        assert response.json()["message"] == ('users "jane" is forbidden: User "dave" cannot impersonate resource '
                                              '"users" in API group "" at the cluster scope')


async def test_impersonated_extra_needs_its_own_grant(secured: runner.RunningSandbox,
                                                      admin: httpx.AsyncClient) -> None:
    """`Impersonate-Extra-<key>` is authorised on `userextras/<key>` and shows in the user's info."""
    headers = {"Impersonate-User": "jane", "Impersonate-Extra-Scopes": "view"}
    me = (await admin.post(WHOAMI, json={}, headers=headers)).json()["status"]["userInfo"]
    assert me["extra"] == {"scopes": ["view"]}
    await apply(admin, role("impersonator", [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}],
                            namespace=None),
                binding("impersonator", "ClusterRole", "impersonator", [user("dave")], namespace=None))
    async with as_user(secured, "dave") as dave:
        assert (await dave.post(WHOAMI, json={}, headers={"Impersonate-User": "jane"})).status_code == 201
        response = await dave.post(WHOAMI, json={}, headers=headers)
        assert response.json()["message"] == (
            'userextras.authentication.k8s.io "view" is forbidden: User "dave" cannot impersonate resource '
            '"userextras/scopes" in API group "authentication.k8s.io" at the cluster scope')


# -- reviews ----------------------------------------------------------------------------------------


async def test_self_reviews_are_allowed_to_every_authenticated_user(secured: runner.RunningSandbox,
                                                                    admin: httpx.AsyncClient) -> None:
    """system:basic-user: SelfSubjectAccessReview and SelfSubjectRulesReview for oneself."""
    await apply(admin, *DOC_POLICY)
    async with as_user(secured, "jane") as jane:
        review = await jane.post(SSAR, json={"spec": {"resourceAttributes": {
            "verb": "list", "resource": "pods", "namespace": "default"}}})
        assert review.status_code == 201
        assert review.json()["status"] == {
            "allowed": True, "reason": 'RBAC: allowed by RoleBinding "read-pods/default" of Role "pod-reader" to '
                                       'User "jane"'}
        rules = (await jane.post(SSRR, json={"spec": {"namespace": "default"}})).json()["status"]
        assert {"verbs": ["get", "watch", "list"], "apiGroups": [""], "resources": ["pods"]} in rules["resourceRules"]
        assert rules["incomplete"] is False


async def test_the_request_log_records_who_did_what(secured: runner.RunningSandbox, admin: httpx.AsyncClient) -> None:
    """Every request's user, verb, resource, subresource, namespace and name (the audit log's fields)."""
    await admin.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
    await admin.get(f"{DEPLOYMENTS}/web/scale")
    async with as_user(secured, "jane") as jane:
        await jane.delete(f"{CONFIGMAPS}/c")
    async with as_token(secured, None) as nobody:
        await nobody.get(CONFIGMAPS)
    records = [(r.user, r.verb, r.api_group, r.resource, r.subresource, r.namespace, r.name, r.code)
               for r in secured.sandbox.access.log]
    assert records[-4:] == [
        ("sandbox-admin", "create", "", "configmaps", "", "default", "", 201),
        ("sandbox-admin", "get", "apps", "deployments", "scale", "default", "web", 404),
        ("jane", "delete", "", "configmaps", "", "default", "c", 403),
        ("", "list", "", "configmaps", "", "default", "", 401),
    ]


async def test_the_official_client_creates_reads_and_deletes_rbac_objects(
        kubernetes_client: kubernetes.client.ApiClient) -> None:
    """kubernetes.utils.create_from_dict with a Role (the client's own e2e flow), then RbacAuthorizationV1Api.

    https://kubernetes.io/docs/reference/kubernetes-api/authorization-resources/role-v1/
    """
    role_manifest = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                     "metadata": {"name": "pod-reader", "namespace": "default"},
                     "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]}
    await asyncio.to_thread(kubernetes.utils.create_from_dict, kubernetes_client, role_manifest)
    rbac_api = kubernetes.client.RbacAuthorizationV1Api(kubernetes_client)
    stored = await asyncio.to_thread(rbac_api.read_namespaced_role, name="pod-reader", namespace="default")
    assert stored.metadata.name == "pod-reader" and stored.rules[0].resources[0] == "pods"
    cluster_roles = await asyncio.to_thread(rbac_api.list_cluster_role)
    assert {"cluster-admin", "admin", "edit", "view"} <= {r.metadata.name for r in cluster_roles.items}
    await asyncio.to_thread(rbac_api.delete_namespaced_role, name="pod-reader", namespace="default", body={})
    with pytest.raises(kubernetes.client.ApiException) as gone:
        await asyncio.to_thread(rbac_api.read_namespaced_role, name="pod-reader", namespace="default")
    assert gone.value.status == 404


async def test_a_review_is_only_ever_created(admin: httpx.AsyncClient) -> None:
    """Reviews are not stored: reading or listing them is 405 MethodNotAllowed."""
    assert (await admin.get(SSAR)).status_code == 405
    assert (await admin.delete(f"{SSAR}/x")).status_code == 405
