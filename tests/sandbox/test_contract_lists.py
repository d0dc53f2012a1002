"""Contract: lists, label and field selectors, and chunked lists.

https://kubernetes.io/docs/reference/using-api/api-concepts/#collections
https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import kubernetes.client
import pytest

from remediator.sandbox import controllers

from .support import CONFIGMAPS, INCIDENTS, NO_CONTROLLERS, PODS, created

EVENTS = "/api/v1/namespaces/default/events"


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def with_phase(api: httpx.AsyncClient, name: str, phase: str) -> None:
    response = await api.patch(f"{PODS}/{name}/status", json={"status": {"phase": phase}},
                               headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text


async def names(api: httpx.AsyncClient, path: str, **params: str) -> list[str]:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    return [item["metadata"]["name"] for item in response.json()["items"]]


async def test_a_list_has_the_list_kind_and_a_resource_version(api: httpx.AsyncClient) -> None:
    """A list is `<Kind>List` with metadata.resourceVersion; items of built-in lists carry no kind
    of their own (typed lists), items of custom resource lists do.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#collections
    """
    await created(api, PODS, pod("a"))
    await created(api, INCIDENTS, {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
                                   "metadata": {"name": "i"}, "spec": {"severity": "P1", "summary": "x"}})
    pods = (await api.get(PODS)).json()
    incidents = (await api.get(INCIDENTS)).json()
    assert (pods["kind"], pods["apiVersion"]) == ("PodList", "v1")
    assert (incidents["kind"], incidents["apiVersion"]) == ("IncidentList", "remediator.dev/v1alpha1")
    for listed in (pods, incidents):
        assert int(listed["metadata"]["resourceVersion"]) > 0
    assert "kind" not in pods["items"][0]
    assert incidents["items"][0]["kind"] == "Incident"


async def test_a_list_across_namespaces_holds_every_namespace(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris"""
    await created(api, "/api/v1/namespaces", {"metadata": {"name": "team"}})
    await created(api, CONFIGMAPS, {"metadata": {"name": "a"}})
    await created(api, "/api/v1/namespaces/team/configmaps", {"metadata": {"name": "b"}})
    listed = (await api.get("/api/v1/configmaps")).json()["items"]
    assert {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed} == {("default", "a"), ("team", "b")}


async def test_label_selectors_select_by_equality_and_set(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"""
    await created(api, PODS, pod("web-1", app="web", tier="front"))
    await created(api, PODS, pod("web-2", app="web", tier="back"))
    await created(api, PODS, pod("db-1", app="db"))
    assert await names(api, PODS, labelSelector="app=web") == ["web-1", "web-2"]
    assert await names(api, PODS, labelSelector="app=web,tier!=front") == ["web-2"]
    assert await names(api, PODS, labelSelector="app in (db, cache)") == ["db-1"]
    assert await names(api, PODS, labelSelector="!tier") == ["db-1"]
    response = await api.get(PODS, params={"labelSelector": "app in (web"})
    assert response.status_code == 400


async def test_field_selectors_on_name_namespace_and_pod_phase(api: httpx.AsyncClient) -> None:
    """Every kind supports metadata.name and metadata.namespace; pods also status.phase.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/#supported-fields
    """
    await created(api, PODS, pod("running"))
    await created(api, PODS, pod("done"))
    await with_phase(api, "running", "Running")
    await with_phase(api, "done", "Succeeded")
    assert await names(api, PODS, fieldSelector="metadata.name=done") == ["done"]
    assert await names(api, "/api/v1/pods", fieldSelector="metadata.namespace=default") == ["done", "running"]
    assert await names(api, PODS, fieldSelector="status.phase=Running") == ["running"]
    assert await names(api, PODS, fieldSelector="status.phase!=Running,metadata.name!=x") == ["done"]


async def test_events_are_selected_by_their_involved_object(api: httpx.AsyncClient) -> None:
    """kubectl describe finds an object's events with involvedObject.* field selectors.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/#supported-fields
    """
    for name, target in (("e1", "web"), ("e2", "db")):
        await created(api, EVENTS, {"metadata": {"name": name}, "reason": "Started", "message": "m",
                                    "involvedObject": {"kind": "Pod", "name": target, "namespace": "default"}})
    assert await names(api, EVENTS, fieldSelector="involvedObject.name=web") == ["e1"]
    assert await names(api, EVENTS, fieldSelector="involvedObject.kind=Pod,involvedObject.name=db") == ["e2"]


async def test_an_unsupported_field_label_is_400(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/#supported-fields"""
    pods = await api.get(PODS, params={"fieldSelector": "spec.containers=x"})
    assert pods.status_code == 400
    assert pods.json()["message"] == "field label not supported: spec.containers"
    config_maps = await api.get(CONFIGMAPS, params={"fieldSelector": "data.a=1"})
    assert config_maps.status_code == 400
    incidents = await api.get(INCIDENTS, params={"fieldSelector": "spec.severity=P1"})
    assert incidents.status_code == 400
    assert incidents.json()["message"] == ("field label not supported for remediator.dev/v1alpha1, "
                                           "Kind=Incident: spec.severity")


async def test_limit_and_continue_page_through_a_list(api: httpx.AsyncClient) -> None:
    """`limit` cuts a list into pages; `continue` fetches the next one; remainingItemCount says how
    many items follow the page; the last page has no continue token.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks
    """
    for index in range(5):
        await created(api, CONFIGMAPS, {"metadata": {"name": f"cm-{index}"}})
    first = (await api.get(CONFIGMAPS, params={"limit": "2"})).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["cm-0", "cm-1"]
    assert first["metadata"]["remainingItemCount"] == 3
    # An object deleted between pages shifts nothing: the token names where the page ended.
    await api.delete(f"{CONFIGMAPS}/cm-0")
    second = (await api.get(CONFIGMAPS, params={"limit": "2", "continue": first["metadata"]["continue"]})).json()
    assert [i["metadata"]["name"] for i in second["items"]] == ["cm-2", "cm-3"]
    assert second["metadata"]["remainingItemCount"] == 1
    last = (await api.get(CONFIGMAPS, params={"limit": "2", "continue": second["metadata"]["continue"]})).json()
    assert [i["metadata"]["name"] for i in last["items"]] == ["cm-4"]
    assert "continue" not in last["metadata"] and "remainingItemCount" not in last["metadata"]


async def test_a_malformed_continue_token_is_400(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks"""
    response = await api.get(CONFIGMAPS, params={"limit": "1", "continue": "garbage"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("continue key is not valid")


async def test_the_official_client_pages_with_limit_and_continue(api: httpx.AsyncClient,
                                                                 core_v1: kubernetes.client.CoreV1Api) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks"""
    for index in range(3):
        await created(api, CONFIGMAPS, {"metadata": {"name": f"cm-{index}", "labels": {"app": "x"}}})
    seen: list[str] = []
    token = None
    while True:
        page = await asyncio.to_thread(core_v1.list_namespaced_config_map, "default", limit=2,
                                       _continue=token, label_selector="app=x")
        seen += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == ["cm-0", "cm-1", "cm-2"]
