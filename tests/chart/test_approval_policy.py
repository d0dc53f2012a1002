"""Who may approve is decided by Kubernetes: the chart's ValidatingAdmissionPolicy against a sandbox that
authenticates users and evaluates admission policies (CEL over request.userInfo), as kube-apiserver does.

alice and mallory may create and edit Incidents and KeyRotations (RBAC); bob is also in the approver group
sre-oncall.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from tests.kubectl import KUBECTL, requires_kubectl

from remediator.sandbox import runner

from .rendering import render, values

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "remediator.dev/v1alpha1"
INCIDENTS = f"/apis/{API}/namespaces/default/incidents"
MERGE = {"Content-Type": "application/merge-patch+json"}
EDITORS = {"alice": ("sre",), "mallory": ("sre",), "bob": ("sre", "sre-oncall")}


@pytest.fixture()
async def cluster() -> AsyncIterator[runner.RunningSandbox]:
    crds = sorted((REPO / "crds").glob("*.yaml"))
    async with runner.running(crd_paths=crds, auth=True) as sandbox:
        async with user(sandbox, None) as admin:
            (await admin.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": "remediator"}})).raise_for_status()
            for document in render("approval-policy.yaml", "remediator", "remediator", values()):
                await create(admin, document)
            await create(admin, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                 "metadata": {"name": "incident-editor"},
                                 "rules": [{"apiGroups": ["remediator.dev"], "resources": ["incidents", "keyrotations"],
                                            "verbs": ["get", "list", "create", "patch", "update"]}]})
            await create(admin, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                                 "metadata": {"name": "sre-edit-incidents"},
                                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                             "name": "incident-editor"},
                                 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                               "name": "sre"}]})
        yield sandbox


def user(sandbox: runner.RunningSandbox, name: str | None) -> httpx.AsyncClient:
    token = sandbox.admin_token if name is None else sandbox.token_for(name, EDITORS[name])
    return httpx.AsyncClient(base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=10,
                             verify=sandbox.client_ssl())


async def create(client: httpx.AsyncClient, document: dict[str, Any]) -> None:
    group_version = document["apiVersion"]
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    plural = {"ValidatingAdmissionPolicy": "validatingadmissionpolicies", "ConfigMap": "configmaps",
              "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
              "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}[document["kind"]]
    namespace = document["metadata"].get("namespace")
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
    (await client.post(path, json=document)).raise_for_status()


def incident(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Incident",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": {"severity": "P0", "summary": "stop the bleeding", "steps": [
                {"name": "stop", "scale": {"target": {"kind": "Deployment", "name": "web"}, "replicas": 0}}]}}


async def as_user(sandbox: runner.RunningSandbox, name: str, method: str, path: str, body: dict[str, Any]
                  ) -> httpx.Response:
    async with user(sandbox, name) as client:
        if method == "POST":
            return await client.post(path, json=body)
        return await client.patch(path, json=body, headers=MERGE)


def approval(approve: str, approved_by: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {"remediator.dev/approve": approve, "remediator.dev/approved-by": approved_by}}}


async def test_an_incident_is_created_in_its_requesters_own_name_and_never_approved(
        cluster: runner.RunningSandbox) -> None:
    forged = await as_user(cluster, "alice", "POST", INCIDENTS, incident("forged", {
        "remediator.dev/requested-by": "the-cto"}))
    assert forged.status_code == 403 and "requested-by must be your user name alice" in forged.text
    pre_approved = await as_user(cluster, "alice", "POST", INCIDENTS, incident("pre-approved", {
        "remediator.dev/requested-by": "alice", "remediator.dev/approve": "all",
        "remediator.dev/approved-by": "the-cto"}))
    assert pre_approved.status_code == 403 and "cannot be created approved" in pre_approved.text
    created = await as_user(cluster, "alice", "POST", INCIDENTS, incident("outage", {
        "remediator.dev/requested-by": "alice"}))
    assert created.status_code == 201, created.text
    renamed = await as_user(cluster, "alice", "PATCH", f"{INCIDENTS}/outage", {
        "metadata": {"annotations": {"remediator.dev/requested-by": "bob"}}})
    assert renamed.status_code == 403 and "requested-by cannot change" in renamed.text


@pytest.mark.parametrize(("approver", "signed", "refusal"), [
    ("mallory", "mallory", "user mallory is not in an approver group"),
    ("bob", "the-cto", "approved-by must be your user name bob"),
    ("bob", "alice", "approved-by must be your user name bob"),
])
async def test_only_an_approver_may_approve_and_only_in_their_own_name(
        cluster: runner.RunningSandbox, approver: str, signed: str, refusal: str) -> None:
    await as_user(cluster, "alice", "POST", INCIDENTS, incident("outage", {"remediator.dev/requested-by": "alice"}))
    refused = await as_user(cluster, approver, "PATCH", f"{INCIDENTS}/outage", approval("all", signed))
    assert refused.status_code == 403 and refusal in refused.text
    approved = await as_user(cluster, "bob", "PATCH", f"{INCIDENTS}/outage", approval("stop", "bob"))
    assert approved.status_code == 200, approved.text
    assert approved.json()["metadata"]["annotations"]["remediator.dev/approved-by"] == "bob"


async def test_the_requester_cannot_approve_their_own_incident(cluster: runner.RunningSandbox) -> None:
    """Four-eyes: bob is an approver, but not of the incident he asked for."""
    await as_user(cluster, "bob", "POST", INCIDENTS, incident("own", {"remediator.dev/requested-by": "bob"}))
    refused = await as_user(cluster, "bob", "PATCH", f"{INCIDENTS}/own", approval("all", "bob"))
    assert refused.status_code == 403 and "four-eyes" in refused.text


async def test_a_retry_is_signed_by_the_user_who_asks_for_it(cluster: runner.RunningSandbox) -> None:
    await as_user(cluster, "alice", "POST", INCIDENTS, incident("outage", {"remediator.dev/requested-by": "alice"}))
    unsigned = await as_user(cluster, "mallory", "PATCH", f"{INCIDENTS}/outage", {"spec": {"retry": 1}})
    assert unsigned.status_code == 403 and "retried-by must be your user name mallory" in unsigned.text
    forged = await as_user(cluster, "mallory", "PATCH", f"{INCIDENTS}/outage", {
        "spec": {"retry": 1}, "metadata": {"annotations": {"remediator.dev/retried-by": "bob"}}})
    assert forged.status_code == 403 and "retried-by must be your user name mallory" in forged.text
    signed = await as_user(cluster, "mallory", "PATCH", f"{INCIDENTS}/outage", {
        "spec": {"retry": 1}, "metadata": {"annotations": {"remediator.dev/retried-by": "mallory"}}})
    assert signed.status_code == 200, signed.text


async def test_edits_that_are_not_approvals_pass(cluster: runner.RunningSandbox) -> None:
    await as_user(cluster, "alice", "POST", INCIDENTS, incident("outage", {"remediator.dev/requested-by": "alice"}))
    labelled = await as_user(cluster, "mallory", "PATCH", f"{INCIDENTS}/outage",
                             {"metadata": {"labels": {"team": "payments"}}})
    assert labelled.status_code == 200, labelled.text


@requires_kubectl
async def test_kubectl_annotate_approves_as_the_signed_in_user_and_prints_the_refusal_otherwise(
        cluster: runner.RunningSandbox, tmp_path: pathlib.Path) -> None:
    """What an on-call engineer types: kubectl annotate, with their own kubeconfig."""
    await as_user(cluster, "alice", "POST", INCIDENTS, incident("outage", {"remediator.dev/requested-by": "alice"}))

    async def annotate(name: str, signed: str) -> tuple[int, str]:
        kubeconfig = cluster.write_kubeconfig(tmp_path / f"{name}.kubeconfig", token=cluster.token_for(
            name, EDITORS[name]))
        process = await asyncio.create_subprocess_exec(
            str(KUBECTL), "--kubeconfig", str(kubeconfig), "annotate", "inc", "outage",
            "remediator.dev/approve=stop", f"remediator.dev/approved-by={signed}", "--overwrite",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        return process.returncode or 0, output.decode()

    code, output = await annotate("mallory", "mallory")
    assert code != 0 and "user mallory is not in an approver group" in output
    code, output = await annotate("bob", "bob")
    assert code == 0, output
    assert "incident.remediator.dev/outage annotated" in output


@requires_kubectl
async def test_the_kubectl_plugin_creates_and_approves_in_the_signed_in_users_name(
        cluster: runner.RunningSandbox, tmp_path: pathlib.Path) -> None:
    """`kubectl remediator create|approve`: the names come from the API server, never from a flag."""
    manifest = tmp_path / "incident.yaml"
    forged = incident("outage", {"remediator.dev/requested-by": "the-cto", "remediator.dev/approve": "all"})
    manifest.write_text(yaml.safe_dump(forged))

    async def plugin(name: str, *args: str) -> tuple[int, str]:
        kubeconfig = cluster.write_kubeconfig(tmp_path / f"{name}.kubeconfig", token=cluster.token_for(
            name, EDITORS[name]))
        env = {**os.environ, "KUBECONFIG": str(kubeconfig),
               "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        process = await asyncio.create_subprocess_exec(
            str(KUBECTL), "remediator", *args, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        return process.returncode or 0, output.decode()

    assert await plugin("alice", "whoami") == (0, "alice\n")
    code, output = await plugin("alice", "create", "-f", str(manifest))
    assert code == 0 and "requested by alice" in output, output
    code, output = await plugin("alice", "approve", "outage", "--step", "stop")
    assert code == 1 and "user alice is not in an approver group" in output, output
    code, output = await plugin("bob", "approve", "outage", "--step", "stop")
    assert code == 0 and "approved (stop) by bob" in output, output
    async with user(cluster, None) as admin:
        stored = (await admin.get(f"{INCIDENTS}/outage")).json()["metadata"]["annotations"]
    assert stored == {"remediator.dev/requested-by": "alice", "remediator.dev/approve": "stop",
                      "remediator.dev/approved-by": "bob"}


async def test_the_alertmanager_receiver_creates_incidents_in_its_own_name_which_the_policy_admits(
        cluster: runner.RunningSandbox, tmp_path: pathlib.Path) -> None:
    from remediator import kube
    from remediator.api.runbooks import RunbookSpec
    from remediator.receiver import incident_writes, plans

    operator = "system:serviceaccount:remediator:remediator"
    kubeconfig = cluster.write_kubeconfig(tmp_path / "receiver.kubeconfig", token=cluster.token_for(operator, ("sre",)))
    manifest = incident("from-alert", {})
    manifest["spec"]["steps"][0]["scale"]["replicas"] = 3
    runbook = plans.Runbook("default", "web-down", RunbookSpec.model_validate({"steps": manifest["spec"]["steps"]}))
    episode = plans.Episode("default", runbook, "k3y", "from-alert", manifest, [], 0)
    api = await kube.async_client(kubeconfig)
    async with api:
        created, new = await incident_writes.IncidentWrites(api)._create(episode.namespace, manifest)
    assert new and created["metadata"]["annotations"] == {"remediator.dev/requested-by": operator}


KEY_ROTATIONS = f"/apis/{API}/namespaces/default/keyrotations"


def key_rotation(name: str, annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "KeyRotation",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": {"secretRef": {"name": "shop-keys"}, "keys": [{"key": "JWT_SECRET"}], **spec}}


def rotate(request: str, emergency: str | None = None) -> dict[str, Any]:
    annotations = {"remediator.dev/rotate": request}
    if emergency is not None:
        annotations["remediator.dev/rotate-emergency"] = emergency
    return {"metadata": {"annotations": annotations}}


DESTRUCTIVE_REFUSAL = "an emergency or inPlace key rotation is destructive: user alice is not in an approver group"


async def test_whoever_may_annotate_a_key_rotation_may_ask_only_for_an_ordinary_rotation(
        cluster: runner.RunningSandbox) -> None:
    """An emergency rotation revokes the old values without waiting for the consumers: it is approved like a
    destructive step, however it is spelled (annotation, spec, or a grace period edited afterwards)."""
    created = await as_user(cluster, "alice", "POST", KEY_ROTATIONS, key_rotation("shop-keys", {}))
    assert created.status_code == 201, created.text
    path = f"{KEY_ROTATIONS}/shop-keys"
    ordinary = await as_user(cluster, "alice", "PATCH", path, rotate("r1", "false"))
    assert ordinary.status_code == 200, ordinary.text
    for spelling in ("true", "TRUE ", "yes", "True"):
        refused = await as_user(cluster, "alice", "PATCH", path, rotate("r2", spelling))
        assert refused.status_code == 403 and DESTRUCTIVE_REFUSAL in refused.text, (spelling, refused.text)
    # The pending request r1 turned into an emergency after the fact.
    refused = await as_user(cluster, "alice", "PATCH", path, rotate("r1", "true"))
    assert refused.status_code == 403, refused.text
    in_place = {"connectionSecretRef": {"name": "db"}, "role": "app", "passwordKey": "PASSWORD",
                "strategy": "inPlace"}
    for spec in ({"emergency": True}, {"databaseRole": in_place}):
        refused = await as_user(cluster, "alice", "PATCH", path, {"spec": spec})
        assert refused.status_code == 403 and DESTRUCTIVE_REFUSAL in refused.text, (spec, refused.text)
    created = await as_user(cluster, "alice", "POST", KEY_ROTATIONS, key_rotation(
        "leaked", {"remediator.dev/rotate": "now", "remediator.dev/rotate-emergency": "true"}))
    assert created.status_code == 403, created.text
    async with user(cluster, None) as admin:
        stored = (await admin.get(path)).json()
    assert stored["metadata"]["annotations"] == {"remediator.dev/rotate": "r1",
                                                 "remediator.dev/rotate-emergency": "false"}
    assert stored["spec"]["emergency"] is False and "databaseRole" not in stored["spec"]
    approved = await as_user(cluster, "bob", "PATCH", path, rotate("r3", "true"))
    assert approved.status_code == 200, approved.text


async def test_an_emergency_key_rotations_trigger_and_grace_period_are_an_approvers_to_change(
        cluster: runner.RunningSandbox) -> None:
    created = await as_user(cluster, "bob", "POST", KEY_ROTATIONS, key_rotation(
        "leaky", {}, emergency=True, emergencyGracePeriod="1h", trigger="v1"))
    assert created.status_code == 201, created.text
    path = f"{KEY_ROTATIONS}/leaky"
    for spec in ({"emergencyGracePeriod": "0s"}, {"trigger": "v2"}, {"schedule": "@every 1h"}):
        refused = await as_user(cluster, "alice", "PATCH", path, {"spec": spec})
        assert refused.status_code == 403 and DESTRUCTIVE_REFUSAL in refused.text, (spec, refused.text)
    unrelated = await as_user(cluster, "alice", "PATCH", path, {"spec": {"verifyTimeout": "2m"}})
    assert unrelated.status_code == 200, unrelated.text
    # Decided from what will happen: made ordinary, the rotation it asks for is ordinary.
    ordinary = await as_user(cluster, "alice", "PATCH", path, {"spec": {"emergency": False, "trigger": "v2"}})
    assert ordinary.status_code == 200, ordinary.text


async def test_the_operator_asks_for_the_emergency_rotations_its_approved_steps_need(
        cluster: runner.RunningSandbox) -> None:
    """A rotateKey step writes the request as the operator's ServiceAccount, after its Incident's approval;
    a GitOps controller is admitted only when the chart lists it."""
    await as_user(cluster, "alice", "POST", KEY_ROTATIONS, key_rotation("shop-keys", {}))
    operator = "system:serviceaccount:remediator:remediator"
    flux = "system:serviceaccount:flux-system:kustomize-controller"
    for name, code in ((operator, 200), (flux, 403)):
        async with httpx.AsyncClient(base_url=cluster.url, timeout=10, verify=cluster.client_ssl(), headers={
                "Authorization": f"Bearer {cluster.token_for(name, ('sre',))}"}) as client:
            answer = await client.patch(f"{KEY_ROTATIONS}/shop-keys", json=rotate(f"by-{code}", "true"),
                                        headers=MERGE)
        assert answer.status_code == code, (name, answer.text)


def test_the_chart_can_admit_a_gitops_controllers_destructive_rotations() -> None:
    flux = "system:serviceaccount:flux-system:kustomize-controller"
    chart_values = values(approvals={**values()["approvals"], "destructiveRotationUsers": [flux]})
    params = [document for document in render("approval-policy.yaml", "remediator", "remediator", chart_values)
              if document["kind"] == "ConfigMap"]
    assert params[0]["data"]["destructiveRotationUsers"] == flux
