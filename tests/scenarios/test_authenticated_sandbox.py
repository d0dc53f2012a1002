"""The operator against a sandbox with authentication and RBAC on, as its own ServiceAccount.

What the production issue's least-privilege test builds on: the operator authenticates with a
ServiceAccount token (and the sandbox's CA) from its kubeconfig, and the request log shows which
verbs on which resources it used, under that identity.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from remediator.sandbox import runner

from .support import wait_for

pytestmark = pytest.mark.sandbox_only("the sandbox's own authentication, RBAC and request log")

REPO = pathlib.Path(__file__).resolve().parents[2]
OPERATOR = "system:serviceaccount:default:remediator"


@pytest.fixture()
async def sandbox() -> AsyncIterator[runner.RunningSandbox]:
    async with runner.running(crd_paths=sorted((REPO / "crds").glob("*.yaml")), auth=True) as running:
        yield running


@pytest.fixture()
async def admin(sandbox: runner.RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.admin_token}"},
                                 verify=sandbox.client_ssl(), timeout=10) as client:
        yield client


@pytest.fixture()
async def kubeconfig(sandbox: runner.RunningSandbox, admin: httpx.AsyncClient,
                     tmp_path: pathlib.Path) -> pathlib.Path:
    """The operator's kubeconfig: the token of ServiceAccount default/remediator, bound to cluster-admin."""
    await admin.post("/api/v1/namespaces/default/serviceaccounts", json={"metadata": {"name": "remediator"}})
    await admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json={
        "metadata": {"name": "remediator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "remediator", "namespace": "default"}]})
    response = await admin.post("/api/v1/namespaces/default/serviceaccounts/remediator/token", json={})
    return sandbox.write_kubeconfig(tmp_path / "kubeconfig", token=response.json()["status"]["token"])


async def test_the_operator_resolves_an_incident_as_its_service_account(
        sandbox: runner.RunningSandbox, admin: httpx.AsyncClient, start_operator: Any) -> None:
    await admin.post("/apis/apps/v1/namespaces/default/deployments", json={
        "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                              "template": {"metadata": {"labels": {"app": "web"}},
                                                           "spec": {"containers": [{"name": "web", "image": "web"}]}}}})
    await start_operator()
    created = await admin.post("/apis/remediator.dev/v1alpha1/namespaces/default/incidents", json={
        "apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": "slow"},
        "spec": {"severity": "P3", "summary": "web is slow", "steps": [
            {"name": "scale-out", "scale": {"target": {"kind": "Deployment", "name": "web"}, "by": 1}}]}})
    assert created.status_code == 201, created.text

    async def resolved() -> bool:
        incident = (await admin.get("/apis/remediator.dev/v1alpha1/namespaces/default/incidents/slow")).json()
        return (incident.get("status") or {}).get("phase") == "Resolved"

    await wait_for(resolved)
    deployment = (await admin.get("/apis/apps/v1/namespaces/default/deployments/web")).json()
    assert deployment["spec"]["replicas"] == 3
    used = {(r.verb, r.resource, r.subresource) for r in sandbox.sandbox.access.log if r.user == OPERATOR}
    assert ("watch", "incidents", "") in used
    assert {("patch", "incidents", "status"), ("patch", "deployments", "scale")} & used
