"""Contract: ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding decide writes as kube-apiserver 1.32 does.

https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import httpx
import yaml

from remediator.sandbox import runner

from .auth_support import as_user
from .support import CONFIGMAPS, DEPLOYMENTS, MERGE, template
from .test_kubectl import Kubectl

POLICIES = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
BINDINGS = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
DEPLOYMENT_RULES = [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                     "resources": ["deployments"]}]
CONFIGMAP_RULES = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                    "resources": ["configmaps"]}]


async def bind(admin: httpx.AsyncClient, name: str, spec: dict[str, Any], actions: tuple[str, ...] = ("Deny",),
               **binding_spec: Any) -> None:
    """Create the policy `name` and its binding `name-binding`."""
    response = await admin.post(POLICIES, json={"apiVersion": "admissionregistration.k8s.io/v1",
                                                "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
                                                "spec": spec})
    assert response.status_code == 201, response.text
    response = await admin.post(BINDINGS, json={
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": f"{name}-binding"},
        "spec": {"policyName": name, "validationActions": list(actions), **binding_spec}})
    assert response.status_code == 201, response.text


def deployment(name: str, replicas: int, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "shop"}}, "template": template()}}


async def test_the_documented_replica_limit_is_denied_with_422(admin: httpx.AsyncClient) -> None:
    """The page's first example: `object.spec.replicas <= 5`, failing with no message."""
    await bind(admin, "demo-policy.example.com", {"failurePolicy": "Fail", "matchConstraints": {
        "resourceRules": DEPLOYMENT_RULES}, "validations": [{"expression": "object.spec.replicas <= 5"}]})
    assert (await admin.post(DEPLOYMENTS, json=deployment("small", 3))).status_code == 201
    response = await admin.post(DEPLOYMENTS, json=deployment("big", 6))
    assert response.status_code == 422
    message = ("deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'demo-policy.example.com' with "
               "binding 'demo-policy.example.com-binding' denied request: failed expression: object.spec.replicas <= 5")
    assert response.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": message, "reason": "Invalid",
                               "details": {"name": "big", "group": "apps", "kind": "deployments",
                                           "causes": [{"message": message.split(" is forbidden: ")[1]}]},
                               "code": 422}
    # an update is checked too; the stored object is left as it was
    patched = await admin.patch(f"{DEPLOYMENTS}/small", json={"spec": {"replicas": 7}}, headers=MERGE)
    assert patched.status_code == 422
    assert (await admin.get(f"{DEPLOYMENTS}/small")).json()["spec"]["replicas"] == 3


async def test_reason_message_expression_and_variables(admin: httpx.AsyncClient) -> None:
    """`reason: Forbidden` answers 403; messageExpression and variables build the message."""
    await bind(admin, "limit", {"matchConstraints": {"resourceRules": DEPLOYMENT_RULES},
                                "variables": [{"name": "limit", "expression": "4"}],
                                "validations": [{"expression": "object.spec.replicas <= variables.limit",
                                                 "reason": "Forbidden", "message": "too many",
                                                 "messageExpression": "'replicas ' + string(object.spec.replicas) "
                                                                      "+ ' above ' + string(variables.limit)"}]})
    response = await admin.post(DEPLOYMENTS, json=deployment("web", 9))
    assert (response.status_code, response.json()["reason"]) == (403, "Forbidden")
    assert response.json()["message"].endswith("denied request: replicas 9 above 4")


async def test_warn_answers_a_warning_header_and_audit_an_annotation(secured: runner.RunningSandbox,
                                                                     admin: httpx.AsyncClient) -> None:
    """validationActions Warn and Audit admit the write; Warn says why in a `Warning` header."""
    await bind(admin, "prefer-small", {"matchConstraints": {"resourceRules": DEPLOYMENT_RULES},
                                       "validations": [{"expression": "object.spec.replicas <= 2",
                                                        "message": "prefer at most 2 replicas"}]},
               actions=("Warn", "Audit"))
    response = await admin.post(DEPLOYMENTS, json=deployment("web", 3))
    assert response.status_code == 201
    assert response.headers.get_list("Warning") == [
        "299 - \"Validation failed for ValidatingAdmissionPolicy 'prefer-small' with binding 'prefer-small-binding': "
        "prefer at most 2 replicas\""]
    record = secured.sandbox.access.log[-1]
    assert json.loads(record.annotations["validation.policy.admission.k8s.io/validation_failure"]) == [
        {"message": "prefer at most 2 replicas", "policy": "prefer-small", "binding": "prefer-small-binding",
         "expressionIndex": 0, "validationActions": ["Warn", "Audit"]}]


async def test_params_from_a_configmap_named_by_the_binding(admin: httpx.AsyncClient) -> None:
    """paramKind/paramRef: the limit lives in a ConfigMap; a missing one denies with `Deny`."""
    await bind(admin, "replica-limit", {
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": {"resourceRules": DEPLOYMENT_RULES},
        "validations": [{"expression": "object.spec.replicas <= int(params.data.maxReplicas)"}]},
        paramRef={"name": "replica-limit", "namespace": "default", "parameterNotFoundAction": "Deny"})
    response = await admin.post(DEPLOYMENTS, json=deployment("web", 1))
    assert response.status_code == 422
    assert response.json()["message"].endswith("denied request: failed to configure binding: no params found for "
                                               "policy binding with `Deny` parameterNotFoundAction")
    await admin.post(CONFIGMAPS, json={"metadata": {"name": "replica-limit"}, "data": {"maxReplicas": "2"}})
    assert (await admin.post(DEPLOYMENTS, json=deployment("web", 2))).status_code == 201
    assert (await admin.post(DEPLOYMENTS, json=deployment("big", 3))).status_code == 422


APPROVAL_POLICY = {
    "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
    "matchConstraints": {"resourceRules": CONFIGMAP_RULES},
    "matchConditions": [{"name": "requests", "expression": "has(object.metadata.labels) && "
                                                           "'example.dev/request' in object.metadata.labels"}],
    "variables": [{"name": "annotations", "expression": "has(object.metadata.annotations) ? "
                                                        "object.metadata.annotations : {}"},
                  {"name": "approvers", "expression": "params.data.approvers.split(',')"}],
    "validations": [
        {"expression": "request.operation != 'CREATE' || "
                       "variables.annotations['example.dev/requested-by'] == request.userInfo.username",
         "message": "requested-by must name the requesting user", "reason": "Forbidden"},
        {"expression": "request.operation != 'UPDATE' || !('example.dev/approved-by' in variables.annotations) || "
                       "(variables.annotations['example.dev/approved-by'] == request.userInfo.username && "
                       "variables.annotations['example.dev/approved-by'] != "
                       "variables.annotations['example.dev/requested-by'] && "
                       "request.userInfo.groups.exists(g, g in variables.approvers))",
         "messageExpression": "'approval by ' + request.userInfo.username + ' is not allowed'",
         "reason": "Forbidden"},
    ],
}


async def test_the_authenticated_user_is_request_user_info(secured: runner.RunningSandbox,
                                                           admin: httpx.AsyncClient) -> None:
    """What the chart's approval policy relies on: who created and who approves, checked against userInfo."""
    await admin.post(CONFIGMAPS, json={"metadata": {"name": "approvers"}, "data": {"approvers": "oncall,leads"}})
    await bind(admin, "approvals", APPROVAL_POLICY, paramRef={"name": "approvers", "namespace": "default"})
    await admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json={
        "metadata": {"name": "editors"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                     "name": "edit"},
        "subjects": [{"kind": "Group", "name": "staff", "apiGroup": "rbac.authorization.k8s.io"}]})
    await secured.controllers.settle()
    request = {"metadata": {"name": "req", "labels": {"example.dev/request": "yes"},
                            "annotations": {"example.dev/requested-by": "alice"}}}
    async with as_user(secured, "mallory", "staff") as mallory:
        response = await mallory.post(CONFIGMAPS, json=request)
        assert response.status_code == 403
        assert response.json()["message"] == (
            "configmaps \"req\" is forbidden: ValidatingAdmissionPolicy 'approvals' with binding 'approvals-binding' "
            "denied request: requested-by must name the requesting user")
    async with as_user(secured, "alice", "staff") as alice:
        assert (await alice.post(CONFIGMAPS, json=request)).status_code == 201
        approve = {"metadata": {"annotations": {"example.dev/approved-by": "alice"}}}
        response = await alice.patch(f"{CONFIGMAPS}/req", json=approve, headers=MERGE)
        assert response.json()["message"].endswith("denied request: approval by alice is not allowed")
    async with as_user(secured, "bob", "staff") as bob:
        response = await bob.patch(f"{CONFIGMAPS}/req", json={"metadata": {"annotations": {
            "example.dev/approved-by": "bob"}}}, headers=MERGE)
        assert response.status_code == 403  # not in an approver group
    async with as_user(secured, "carol", "staff", "oncall") as carol:
        response = await carol.patch(f"{CONFIGMAPS}/req", json={"metadata": {"annotations": {
            "example.dev/approved-by": "carol"}}}, headers=MERGE)
        assert response.status_code == 200, response.text
    # objects the match condition leaves out are not checked
    assert (await admin.post(CONFIGMAPS, json={"metadata": {"name": "plain"}})).status_code == 201


async def test_selectors_exclusions_and_operations(admin: httpx.AsyncClient) -> None:
    """namespaceSelector, objectSelector and excludeResourceRules narrow what a policy sees; DELETE has oldObject."""
    await admin.post("/api/v1/namespaces", json={"metadata": {"name": "prod", "labels": {"env": "prod"}}})
    await bind(admin, "prod-only", {"matchConstraints": {
        "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["configmaps"]}],
        "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"],
                                  "resources": ["configmaps"], "resourceNames": ["exempt"]}],
        "namespaceSelector": {"matchLabels": {"env": "prod"}},
        "objectSelector": {"matchExpressions": [{"key": "protected", "operator": "Exists"}]}},
        "validations": [{"expression": "request.operation != 'DELETE' || oldObject.metadata.labels.protected == 'no'",
                         "message": "protected"},
                        {"expression": "request.operation == 'DELETE' || object.data.size() > 0",
                         "message": "needs data"}]})
    prod = "/api/v1/namespaces/prod/configmaps"
    assert (await admin.post(CONFIGMAPS, json={"metadata": {"name": "a", "labels": {"protected": "yes"}}})
            ).status_code == 201  # namespace not selected
    assert (await admin.post(prod, json={"metadata": {"name": "b"}})).status_code == 201  # object not selected
    assert (await admin.post(prod, json={"metadata": {"name": "exempt", "labels": {"protected": "yes"}}})
            ).status_code == 201
    assert (await admin.post(prod, json={"metadata": {"name": "c", "labels": {"protected": "yes"}}})
            ).status_code == 422
    assert (await admin.post(prod, json={"metadata": {"name": "c", "labels": {"protected": "yes"}},
                                         "data": {"k": "v"}})).status_code == 201
    response = await admin.delete(f"{prod}/c")
    assert response.status_code == 422 and response.json()["message"].endswith("denied request: protected")


async def test_failure_policy_decides_on_expression_errors(admin: httpx.AsyncClient) -> None:
    """An expression that errors denies under Fail (the default) and is skipped under Ignore."""
    await bind(admin, "broken", {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": CONFIGMAP_RULES},
                                 "validations": [{"expression": "object.data.missing == 'x'"}]})
    response = await admin.post(CONFIGMAPS, json={"metadata": {"name": "c"}, "data": {"a": "b"}})
    assert response.status_code == 422
    assert response.json()["message"].endswith(
        "denied request: expression 'object.data.missing == 'x'' resulted in error: no such key: missing")
    policy = (await admin.get(f"{POLICIES}/broken")).json()
    policy["spec"]["failurePolicy"] = "Ignore"
    assert (await admin.put(f"{POLICIES}/broken", json=policy)).status_code == 200
    assert (await admin.post(CONFIGMAPS, json={"metadata": {"name": "c"}, "data": {"a": "b"}})).status_code == 201


async def test_kubectl_prints_the_warning(secured: runner.RunningSandbox, admin: httpx.AsyncClient,
                                          tmp_path: pathlib.Path) -> None:
    """kubectl shows a Warn action's message as `Warning: ...` on stderr."""
    await bind(admin, "labels", {"matchConstraints": {"resourceRules": CONFIGMAP_RULES},
                                 "validations": [{"expression": "has(object.metadata.labels)",
                                                  "message": "configmaps should be labelled"}]}, actions=("Warn",))
    kubectl = Kubectl(secured.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bare"}}))
    run = await kubectl("apply", "-f", str(manifest))
    assert "configmap/bare created" in run.stdout
    assert ("Warning: Validation failed for ValidatingAdmissionPolicy 'labels' with binding 'labels-binding': "
            "configmaps should be labelled") in run.stderr


async def test_a_policy_that_does_not_compile_or_a_binding_without_actions_is_refused(
        admin: httpx.AsyncClient) -> None:
    """Expressions are compiled when the policy is written; a binding needs its actions and its policy's name."""
    response = await admin.post(POLICIES, json={"metadata": {"name": "typo"}, "spec": {
        "matchConstraints": {"resourceRules": CONFIGMAP_RULES},
        "validations": [{"expression": "object.data.size( > 0"}, {"expression": "objekt.data.size() > 0"}]}})
    assert response.status_code == 422
    causes = response.json()["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.validations[0].expression", "spec.validations[1].expression"]
    assert causes[0]["message"].startswith('Invalid value: "object.data.size( > 0": compilation failed: ERROR: '
                                           "<input>:1:")
    assert "undeclared reference to 'objekt'" in causes[1]["message"]
    response = await admin.post(BINDINGS, json={"metadata": {"name": "b"}, "spec": {"policyName": "p"}})
    assert response.status_code == 422
    assert response.json()["message"] == ('ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io "b" is '
                                          "invalid: spec.validationActions: Required value")


async def test_server_side_apply_is_admitted_like_any_write(admin: httpx.AsyncClient) -> None:
    """An apply (PATCH application/apply-patch+yaml) creating or changing an object goes through the policies."""
    await bind(admin, "demo", {"matchConstraints": {"resourceRules": DEPLOYMENT_RULES},
                               "validations": [{"expression": "object.spec.replicas <= 5", "message": "at most 5"}]})
    apply = {"Content-Type": "application/apply-patch+yaml"}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", **deployment("web", 6)}
    response = await admin.patch(f"{DEPLOYMENTS}/web?fieldManager=gitops", json=body, headers=apply)
    assert response.status_code == 422, response.text
    assert response.json()["message"].endswith("denied request: at most 5")
    body["spec"]["replicas"] = 2
    assert (await admin.patch(f"{DEPLOYMENTS}/web?fieldManager=gitops", json=body, headers=apply)).status_code == 201
