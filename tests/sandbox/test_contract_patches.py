"""Contract: PATCH with the content types kubectl, Kopf and the kubernetes client send.

https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import kubernetes.client
import pytest

from remediator.sandbox import controllers

from .support import DEPLOYMENTS, INCIDENTS, MERGE, NO_CONTROLLERS, created, incident
from .test_contract_watches import events

STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


def deployment() -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "app", "image": "shop:1.0", "env": [{"name": "MODE", "value": "a"},
                                                          {"name": "LEVEL", "value": "1"}]},
            {"name": "proxy", "image": "envoy:1.30"}]}}}}


@pytest.fixture()
async def web(api: httpx.AsyncClient) -> dict[str, Any]:
    return await created(api, DEPLOYMENTS, deployment())


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


@pytest.mark.usefixtures("web")
async def test_a_merge_patch_replaces_lists_whole(api: httpx.AsyncClient) -> None:
    """JSON merge patch (RFC 7386): maps merge, lists are replaced, null deletes.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#use-a-json-merge-patch-to-update-a-deployment
    """
    patch = {"metadata": {"labels": {"team": "shop"}},
             "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop:2.0"}]}}}}
    patched = (await api.patch(f"{DEPLOYMENTS}/web", json=patch, headers=MERGE)).json()
    assert [c["name"] for c in containers(patched)] == ["app"]
    assert patched["metadata"]["labels"] == {"team": "shop"}
    unlabelled = (await api.patch(f"{DEPLOYMENTS}/web", json={"metadata": {"labels": {"team": None}}},
                                  headers=MERGE)).json()
    assert not unlabelled["metadata"].get("labels")


@pytest.mark.usefixtures("web")
async def test_a_strategic_merge_patch_merges_containers_and_env_by_name(api: httpx.AsyncClient) -> None:
    """Strategic merge patch merges lists by their patch merge key: containers and env by name.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#use-a-strategic-merge-patch-to-update-a-deployment
    """
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "shop:2.0", "env": [{"name": "LEVEL", "value": "2"}, {"name": "NEW", "value": "x"}]},
    ]}}}}
    patched = (await api.patch(f"{DEPLOYMENTS}/web", json=patch, headers=STRATEGIC)).json()
    app, proxy = containers(patched)
    assert (app["name"], app["image"], proxy["name"]) == ("app", "shop:2.0", "proxy")
    # Items only the server has keep their place before the patch's items (mergeSortedSlice).
    assert app["env"] == [{"name": "MODE", "value": "a"}, {"name": "LEVEL", "value": "2"},
                          {"name": "NEW", "value": "x"}]


@pytest.mark.usefixtures("web")
async def test_a_strategic_delete_directive_removes_one_container(api: httpx.AsyncClient) -> None:
    """https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md"""
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "proxy", "$patch": "delete"}]}}}}
    patched = (await api.patch(f"{DEPLOYMENTS}/web", json=patch, headers=STRATEGIC)).json()
    assert [c["name"] for c in containers(patched)] == ["app"]


@pytest.mark.usefixtures("web")
async def test_a_json_patch_applies_operations_in_order(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#use-a-json-patch-to-update-a-deployment"""
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "shop:3.0"},
             {"op": "add", "path": "/metadata/annotations", "value": {"note": "x"}},
             {"op": "remove", "path": "/spec/template/spec/containers/1"}]
    patched = (await api.patch(f"{DEPLOYMENTS}/web", json=patch, headers=JSON_PATCH)).json()
    assert [c["image"] for c in containers(patched)] == ["shop:3.0"]
    assert patched["metadata"]["annotations"] == {"note": "x"}


@pytest.mark.usefixtures("web")
async def test_a_json_patch_on_a_missing_path_is_422_and_changes_nothing(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply"""
    patch = [{"op": "replace", "path": "/spec/replicas", "value": 3},
             {"op": "remove", "path": "/spec/nothing/here"}]
    response = await api.patch(f"{DEPLOYMENTS}/web", json=patch, headers=JSON_PATCH)
    assert response.status_code == 422
    assert (await api.get(f"{DEPLOYMENTS}/web")).json()["spec"]["replicas"] == 1


async def test_a_strategic_merge_patch_of_a_custom_resource_is_415(api: httpx.AsyncClient) -> None:
    """Custom resources have no merge strategies: strategic merge patch is unsupported (kubectl patch
    falls back to a merge patch).

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#advanced-topics
    """
    await api.post(INCIDENTS, json={"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
                                    "metadata": {"name": "i"}, "spec": {"severity": "P2", "summary": "x"}})
    response = await api.patch(f"{INCIDENTS}/i", json={"spec": {"severity": "P1"}}, headers=STRATEGIC)
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    assert response.json()["message"].startswith("the body of the request was in an unknown format - accepted "
                                                 "media types include: application/json-patch+json")


@pytest.mark.usefixtures("web")
async def test_a_cbor_apply_is_refused_with_415(api: httpx.AsyncClient) -> None:
    """Server-side apply in CBOR is answered 415 as a server without the CBOR feature answers it.

    https://kubernetes.io/docs/reference/using-api/server-side-apply/
    """
    response = await api.patch(f"{DEPLOYMENTS}/web", params={"fieldManager": "kubectl"},
                               content=b"\xa1\x64kind\x6aDeployment",
                               headers={"Content-Type": "application/apply-patch+cbor"})
    assert response.status_code == 415
    assert response.json()["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, "
        "application/apply-patch+yaml")


@pytest.mark.usefixtures("web")
async def test_a_dry_run_patch_answers_the_result_and_stores_nothing(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run"""
    before = (await api.get(f"{DEPLOYMENTS}/web")).json()
    response = await api.patch(f"{DEPLOYMENTS}/web", params={"dryRun": "All"}, json={"spec": {"replicas": 9}},
                               headers=MERGE)
    assert response.status_code == 200 and response.json()["spec"]["replicas"] == 9
    assert (await api.get(f"{DEPLOYMENTS}/web")).json() == before


@pytest.mark.usefixtures("web")
async def test_the_official_client_patches_a_deployment_strategically(apps_v1: kubernetes.client.AppsV1Api) -> None:
    """The kubernetes client sends a dict body of patch_* as a strategic merge patch.

    https://github.com/kubernetes-client/python/blob/master/kubernetes/docs/AppsV1Api.md#patch_namespaced_deployment
    """
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1.31"}]}}}}
    patched = await asyncio.to_thread(apps_v1.patch_namespaced_deployment, "web", "default", patch)
    assert [(c.name, c.image) for c in patched.spec.template.spec.containers] == [("app", "shop:1.0"),
                                                                                 ("proxy", "envoy:1.31")]


async def test_each_patched_version_stays_as_it_was_written(api: httpx.AsyncClient) -> None:
    """Later patches change nothing of what an earlier one wrote: a watch replays every version as it was.

    Patched objects share what a patch leaves alone with the stored version, and what it sets with the
    request's body; the server's defaulting and admission must never change any of them in place.
    """
    made = await created(api, INCIDENTS, incident("shared"))
    condition = {"type": "Ready", "status": "False", "reason": "Remediating", "message": "first",
                 "lastTransitionTime": "2026-07-01T12:00:00Z"}
    writes = [{"status": {"phase": "Remediating", "conditions": [condition]}},
              {"status": {"conditions": [{**condition, "message": "second"}]}},
              {"metadata": {"labels": {"team": "db"}}, "spec": {"summary": "db still down"}}]
    for write in writes:
        path = f"{INCIDENTS}/shared" + ("/status" if "status" in write else "")
        response = await api.patch(path, json=write, headers=MERGE)
        assert response.status_code == 200, response.text
    params = {"watch": "true", "resourceVersion": made["metadata"]["resourceVersion"]}
    async with api.stream("GET", INCIDENTS, params=params) as stream:
        received = [e["object"] for e in await events(stream.aiter_lines(), 3)]
    assert [o["status"]["conditions"][0]["message"] for o in received] == ["first", "second", "second"]
    assert [o["spec"]["summary"] for o in received] == ["db down", "db down", "db still down"]
    assert [(o["metadata"].get("labels") or {}).get("team") for o in received] == [None, None, "db"]
