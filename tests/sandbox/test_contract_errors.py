"""Contract: failures are answered with metav1.Status bodies worded as kube-apiserver words them.

Clients act on `code` and `reason` (Kopf, client-go's IsNotFound/IsConflict), and print `message`.
https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#response-status-kind
"""

from __future__ import annotations

import asyncio

import httpx
import kubernetes.client
import pytest

from remediator.sandbox import controllers

from .support import CONFIGMAPS, INCIDENTS, NO_CONTROLLERS, incident

INCIDENT = incident()


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


async def test_a_missing_object_is_404_not_found_naming_the_resource(api: httpx.AsyncClient) -> None:
    """details.kind of NotFound is the resource (plural), as NewNotFound fills it in; the core group
    is left out of details.

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#http-status-codes
    """
    custom = await api.get(f"{INCIDENTS}/x")
    assert custom.status_code == 404
    assert custom.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'incidents.remediator.dev "x" not found', "reason": "NotFound",
        "details": {"name": "x", "group": "remediator.dev", "kind": "incidents"}, "code": 404}
    core = await api.delete(f"{CONFIGMAPS}/x")
    assert core.status_code == 404
    assert core.json()["message"] == 'configmaps "x" not found'
    assert core.json()["details"] == {"name": "x", "kind": "configmaps"}


async def test_creating_an_existing_name_is_409_already_exists(api: httpx.AsyncClient) -> None:
    """https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#http-status-codes"""
    assert (await api.post(INCIDENTS, json=INCIDENT)).status_code == 201
    response = await api.post(INCIDENTS, json=INCIDENT)
    assert response.status_code == 409
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'incidents.remediator.dev "i" already exists', "reason": "AlreadyExists",
        "details": {"name": "i", "group": "remediator.dev", "kind": "incidents"}, "code": 409}


async def test_creating_in_a_namespace_that_does_not_exist_is_404(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/"""
    response = await api.post("/api/v1/namespaces/nowhere/configmaps", json={"metadata": {"name": "c"}})
    assert response.status_code == 404
    assert response.json()["message"] == 'namespaces "nowhere" not found'
    assert response.json()["details"] == {"name": "nowhere", "kind": "namespaces"}


async def test_creating_in_a_terminating_namespace_is_forbidden(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/"""
    await api.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    await api.post("/api/v1/namespaces/team/configmaps", json={"metadata": {"name": "held",
                                                                           "finalizers": ["x.io/hold"]}})
    await api.delete("/api/v1/namespaces/team")
    response = await api.post("/api/v1/namespaces/team/configmaps", json={"metadata": {"name": "c"}})
    assert response.status_code == 403
    assert response.json()["reason"] == "Forbidden"
    assert "because it is being terminated" in response.json()["message"]


async def test_a_body_naming_another_namespace_is_400(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris"""
    response = await api.post(CONFIGMAPS, json={"metadata": {"name": "c", "namespace": "kube-system"}})
    assert response.status_code == 400
    assert response.json()["message"] == ("the namespace of the provided object does not match the namespace "
                                          "sent on the request")


async def test_an_unknown_resource_and_a_namespaced_path_of_a_cluster_kind_are_404(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris"""
    for path in ("/apis/remediator.dev/v1alpha1/namespaces/default/nothings", "/apis/nothing.dev/v1/things",
                 "/api/v1/namespaces/default/namespaces/default"):
        response = await api.get(path)
        assert response.status_code == 404, path
        assert response.json()["reason"] == "NotFound"


async def test_a_body_that_is_not_json_is_400(api: httpx.AsyncClient) -> None:
    """https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#http-status-codes"""
    response = await api.post(CONFIGMAPS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"


async def test_the_official_client_raises_api_exceptions_with_the_status(
        custom_objects: kubernetes.client.CustomObjectsApi) -> None:
    """https://github.com/kubernetes-client/python/blob/master/kubernetes/docs/CustomObjectsApi.md"""
    with pytest.raises(kubernetes.client.ApiException) as caught:
        await asyncio.to_thread(custom_objects.get_namespaced_custom_object, "remediator.dev", "v1alpha1",
                                "default", "incidents", "x")
    assert caught.value.status == 404
    assert '"reason":"NotFound"' in caught.value.body


async def test_a_status_body_is_byte_for_byte_what_kube_apiserver_sends(api: httpx.AsyncClient) -> None:
    """metav1.Status is printed in its Go struct's field order (kind, apiVersion, metadata, status,
    message, reason, details, code), compactly, and with the newline encoding/json's Encoder ends
    every body with: clients and tools that compare or log raw bodies see the same bytes."""
    response = await api.get(f"{CONFIGMAPS}/x")
    assert response.content == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"configmaps \\"x\\" not found","reason":"NotFound",'
        b'"details":{"name":"x","kind":"configmaps"},"code":404}\n')
