"""Contract: optimistic concurrency through resourceVersion, as Kopf and controllers rely on it.

https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency
https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
"""

from __future__ import annotations

import asyncio

import httpx
import kubernetes.client
import pytest

from .support import CONFIGMAPS, INCIDENTS, created, incident

CONFLICT = ('Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again")


async def test_a_put_with_a_stale_resource_version_is_a_409_conflict(api: httpx.AsyncClient) -> None:
    """An update carrying an older resourceVersion than the stored one fails with 409 Conflict.

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency
    """
    stale = await created(api, INCIDENTS, incident("race"))
    fresh = {**stale, "spec": {**stale["spec"], "severity": "P1"}}
    assert (await api.put(f"{INCIDENTS}/race", json=fresh)).status_code == 200

    stale["spec"]["severity"] = "P0"
    response = await api.put(f"{INCIDENTS}/race", json=stale)
    assert response.status_code == 409
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": CONFLICT.format(resource="incidents.remediator.dev", name="race"), "reason": "Conflict",
        "details": {"name": "race", "group": "remediator.dev", "kind": "incidents"}, "code": 409}


async def test_a_custom_resource_put_without_resource_version_is_invalid(api: httpx.AsyncClient) -> None:
    """Custom resources require metadata.resourceVersion on update (unconditional updates are refused).

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
    """
    obj = await created(api, INCIDENTS, incident("blind"))
    del obj["metadata"]["resourceVersion"]
    response = await api.put(f"{INCIDENTS}/blind", json=obj)
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["message"] == ('Incident.remediator.dev "blind" is invalid: metadata.resourceVersion: '
                                 "Invalid value: 0x0: must be specified for an update")
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                                            "message": "Invalid value: 0x0: must be specified for an update"}]


async def test_a_built_in_put_without_resource_version_is_an_unconditional_update(
        api: httpx.AsyncClient) -> None:
    """https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"""
    await created(api, CONFIGMAPS, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    response = await api.put(f"{CONFIGMAPS}/settings", json={"metadata": {"name": "settings"}, "data": {"a": "2"}})
    assert response.status_code == 200 and response.json()["data"] == {"a": "2"}


async def test_a_merge_patch_carrying_a_stale_resource_version_is_a_conflict(api: httpx.AsyncClient) -> None:
    """A patch is applied to the stored object; a metadata.resourceVersion in the patch is a
    precondition, and a stale one fails with 409.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply
    """
    obj = await created(api, CONFIGMAPS, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    stale_rv = obj["metadata"]["resourceVersion"]
    merge = {"Content-Type": "application/merge-patch+json"}
    await api.patch(f"{CONFIGMAPS}/settings", json={"data": {"a": "2"}}, headers=merge)
    response = await api.patch(f"{CONFIGMAPS}/settings",
                               json={"metadata": {"resourceVersion": stale_rv}, "data": {"a": "3"}}, headers=merge)
    assert response.status_code == 409
    assert response.json()["message"] == CONFLICT.format(resource="configmaps", name="settings")
    assert (await api.get(f"{CONFIGMAPS}/settings")).json()["data"] == {"a": "2"}


async def test_a_json_patch_whose_test_fails_is_422(api: httpx.AsyncClient) -> None:
    """A JSON patch `test` of /metadata/resourceVersion that does not hold fails the whole patch with
    422 (kube-apiserver's generic "rejected our request"), which Kopf catches as a lost race.

    https://datatracker.ietf.org/doc/html/rfc6902#section-4.6
    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    """
    obj = await created(api, INCIDENTS, incident("guarded"))
    rv = obj["metadata"]["resourceVersion"]
    json_patch = {"Content-Type": "application/json-patch+json"}
    moved = await api.patch(f"{INCIDENTS}/guarded", headers=json_patch, json=[
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/severity", "value": "P1"}])
    assert moved.status_code == 200 and moved.json()["spec"]["severity"] == "P1"

    response = await api.patch(f"{INCIDENTS}/guarded", headers=json_patch, json=[
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/severity", "value": "P0"}])
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert status["details"]["causes"][0]["reason"] == "UnexpectedServerResponse"
    assert "test failed" in status["details"]["causes"][0]["message"]
    assert (await api.get(f"{INCIDENTS}/guarded")).json()["spec"]["severity"] == "P1"


async def test_the_official_client_raises_409_on_a_stale_replace(core_v1: kubernetes.client.CoreV1Api) -> None:
    """https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"""
    body = kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="typed"), data={"k": "1"})
    made = await asyncio.to_thread(core_v1.create_namespaced_config_map, "default", body)
    made.data = {"k": "2"}
    await asyncio.to_thread(core_v1.replace_namespaced_config_map, "typed", "default", made)
    made.data = {"k": "3"}
    with pytest.raises(kubernetes.client.ApiException) as caught:
        await asyncio.to_thread(core_v1.replace_namespaced_config_map, "typed", "default", made)
    assert caught.value.status == 409 and caught.value.reason == "Conflict"
