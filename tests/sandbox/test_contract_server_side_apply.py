"""Contract: server-side apply (`PATCH` with application/apply-patch+yaml) and field ownership.

https://kubernetes.io/docs/reference/using-api/server-side-apply/ — each manager owns the fields
its configuration sets (managedFields, operation Apply); changing another manager's field is a
409 conflict unless forced; a field a manager stops applying is removed unless another owns it;
once an object has managedFields, ordinary writes are recorded too (operation Update).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import httpx
import kubernetes.client
import kubernetes.dynamic
import yaml
from tests.sandbox.test_kubectl import Kubectl

from .support import INCIDENTS, incident

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = {"Content-Type": "application/apply-patch+yaml"}
EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def config_map(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": data}


async def apply(api: httpx.AsyncClient, path: str, body: dict[str, Any], manager: str,
                force: bool = False) -> httpx.Response:
    params = {"fieldManager": manager, **({"force": "true"} if force else {})}
    return await api.patch(path, content=yaml.safe_dump(body), params=params, headers=APPLY)


def owners(obj: dict[str, Any]) -> dict[tuple[str, str, str | None], Any]:
    return {(e["manager"], e["operation"], e.get("subresource")): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields") or []}


async def test_an_apply_creates_the_object_and_records_what_the_manager_owns(api: httpx.AsyncClient) -> None:
    response = await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="fast"), "ops")
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["data"] == {"mode": "fast"}
    [entry] = stored["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "manager": "ops", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:mode": {}}}}


async def test_changing_another_managers_field_conflicts_unless_forced(api: httpx.AsyncClient) -> None:
    """The documented conflict: 409 naming the manager and the field; with force the applier takes it."""
    await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="fast"), "ops")
    refused = await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="slow"), "tuner")
    assert refused.status_code == 409
    assert refused.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "ops": .data.mode', "reason": "Conflict",
        "details": {"causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "ops"',
                                "field": ".data.mode"}]}, "code": 409}
    forced = await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="slow"), "tuner", force=True)
    assert forced.status_code == 200
    assert forced.json()["data"] == {"mode": "slow"}
    assert owners(forced.json()) == {("tuner", "Apply", None): {"f:data": {"f:mode": {}}}}


async def test_applying_the_same_value_shares_the_field(api: httpx.AsyncClient) -> None:
    """Two managers applying one value both own it; the field stays while either still applies it."""
    await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="fast", size="l"), "ops")
    shared = await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="fast"), "tuner")
    assert shared.status_code == 200
    assert set(owners(shared.json())) == {("ops", "Apply", None), ("tuner", "Apply", None)}
    dropped = await apply(api, f"{CONFIGMAPS}/settings", config_map(size="l"), "ops")
    assert dropped.json()["data"] == {"mode": "fast", "size": "l"}  # tuner still owns mode


async def test_a_field_no_longer_applied_is_removed(api: httpx.AsyncClient) -> None:
    await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="fast", size="l"), "ops")
    response = await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="fast"), "ops")
    assert response.json()["data"] == {"mode": "fast"}


async def test_an_update_after_an_apply_is_recorded_and_conflicts_with_the_next_apply(
        api: httpx.AsyncClient) -> None:
    """A merge patch by another manager takes the field it changes (operation Update); re-applying the
    old value then conflicts with that manager, named with its API version and time."""
    await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="fast"), "ops")
    edited = await api.patch(f"{CONFIGMAPS}/settings", params={"fieldManager": "editor"},
                             json={"data": {"mode": "slow"}}, headers={"Content-Type": "application/merge-patch+json"})
    entries = owners(edited.json())
    assert entries[("editor", "Update", None)] == {"f:data": {"f:mode": {}}}
    assert ("ops", "Apply", None) not in entries
    when = next(e["time"] for e in edited.json()["metadata"]["managedFields"] if e["manager"] == "editor")
    refused = await apply(api, f"{CONFIGMAPS}/settings", config_map(mode="fast"), "ops")
    assert refused.status_code == 409
    assert refused.json()["message"] == (f'Apply failed with 1 conflict: conflict with "editor" using v1 at {when}: '
                                         ".data.mode")


async def test_associative_lists_merge_item_by_item(api: httpx.AsyncClient) -> None:
    """A Deployment's containers are a map list keyed by name: two managers each own their container."""
    def deployment(container: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                    "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}}
    await apply(api, f"{DEPLOYMENTS}/web", deployment({"name": "web", "image": "web:1"}), "ops")
    both = await apply(api, f"{DEPLOYMENTS}/web", deployment({"name": "proxy", "image": "envoy:1"}), "mesh")
    assert both.status_code == 200, both.text
    containers = both.json()["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("web", "web:1"), ("proxy", "envoy:1")]
    mesh = owners(both.json())[("mesh", "Apply", None)]
    assert 'k:{"name":"proxy"}' in mesh["f:spec"]["f:template"]["f:spec"]["f:containers"]


async def test_an_apply_needs_a_field_manager(api: httpx.AsyncClient) -> None:
    response = await api.patch(f"{CONFIGMAPS}/settings", content=yaml.safe_dump(config_map(mode="x")),
                               headers=APPLY)
    assert response.status_code == 422
    assert response.json()["message"] == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                          "is required for apply patch")


async def test_a_gitops_apply_then_an_operator_status_write_then_the_same_apply(api: httpx.AsyncClient) -> None:
    """Flux applies an Incident (forcing, as it does), the operator writes its status through /status,
    Flux applies the same configuration again: no conflict, and the status stays."""
    desired = {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", **incident("web-down")}
    desired["metadata"] = {"name": "web-down", "namespace": "default"}
    first = await apply(api, f"{INCIDENTS}/web-down", desired, "kustomize-controller", force=True)
    assert first.status_code == 201, first.text
    status = await api.patch(f"{INCIDENTS}/web-down/status", params={"fieldManager": "remediator"},
                             json={"status": {"phase": "Mitigating"}},
                             headers={"Content-Type": "application/merge-patch+json"})
    assert status.status_code == 200
    # The Incident had no status: the write added the map itself too (`.`), as structured-merge-diff records it.
    assert owners(status.json())[("remediator", "Update", "status")] == {"f:status": {".": {}, "f:phase": {}}}
    again = await apply(api, f"{INCIDENTS}/web-down", desired, "kustomize-controller")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == {"phase": "Mitigating"}
    assert again.json()["metadata"]["resourceVersion"] == status.json()["metadata"]["resourceVersion"]


async def test_kubectl_apply_server_side_twice_with_different_managers(
        kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> None:
    kubectl = Kubectl(kubeconfig, tmp_path)
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(yaml.safe_dump(config_map(mode="fast")))
    created = await kubectl("apply", "--server-side", "-f", str(manifest))
    assert created.stdout == "configmap/settings serverside-applied\n"
    manifest.write_text(yaml.safe_dump(config_map(mode="slow")))
    refused = await kubectl("apply", "--server-side", "--field-manager=tuner", "-f", str(manifest), check=False)
    assert refused.code == 1
    assert 'conflict with "kubectl": .data.mode' in refused.stderr
    forced = await kubectl("apply", "--server-side", "--field-manager=tuner", "--force-conflicts",
                           "-f", str(manifest))
    assert forced.stdout == "configmap/settings serverside-applied\n"
    stored = json.loads((await kubectl("get", "configmap", "settings", "-o", "json",
                                       "--show-managed-fields")).stdout)
    assert stored["data"] == {"mode": "slow"}
    assert [e["manager"] for e in stored["metadata"]["managedFields"]] == ["tuner"]


async def test_applying_the_examples_twice_server_side_changes_nothing_the_second_time(
        kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Re-applying an unchanged configuration is a no-op: list items match on their keys with the
    schema's defaults (a port's protocol), so nothing is duplicated and the generation stays."""
    kubectl = Kubectl(kubeconfig, tmp_path)
    examples = str(EXAMPLES)
    await kubectl("apply", "--server-side", "-f", examples)
    first = json.loads((await kubectl("get", "deployment", "web", "-o", "json")).stdout)
    await kubectl("apply", "--server-side", "-f", examples)
    second = json.loads((await kubectl("get", "deployment", "web", "-o", "json")).stdout)
    assert second["metadata"]["generation"] == first["metadata"]["generation"] == 1
    assert second["spec"]["template"]["spec"]["containers"] == first["spec"]["template"]["spec"]["containers"]


async def test_the_official_clients_create_then_apply_flow_is_idempotent(
        kubernetes_client: kubernetes.client.ApiClient) -> None:
    """The official client's e2e check: a Deployment created, then the same manifest server-side applied
    (DynamicClient.server_side_apply, field manager python-client), reads back unchanged."""
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx-app", "labels": {
        "app": "nginx"}}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}}, "template": {
            "metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.15.4", "ports": [{"containerPort": 80}]}]}}}}

    def create_then_apply() -> kubernetes.client.V1Deployment:
        apps = kubernetes.client.AppsV1Api(kubernetes_client)
        apps.create_namespaced_deployment(namespace="default", body=manifest)
        deployments = kubernetes.dynamic.DynamicClient(kubernetes_client).resources.get(
            api_version="apps/v1", kind="Deployment")
        deployments.server_side_apply(body=manifest, namespace="default", field_manager="python-client")
        return apps.read_namespaced_deployment(name="nginx-app", namespace="default")

    deployment = await asyncio.to_thread(create_then_apply)
    assert deployment.spec.replicas == 3
    [container] = deployment.spec.template.spec.containers
    assert (container.name, container.image, container.ports[0].container_port) == ("nginx", "nginx:1.15.4", 80)
    assert deployment.metadata.generation == 1
