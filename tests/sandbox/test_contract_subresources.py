"""Contract: the status and scale subresources split who may write what.

https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#subresources
https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#spec-and-status
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import kubernetes.client
import pytest

from remediator.sandbox import controllers

from .support import DEPLOYMENTS, INCIDENTS, MERGE, NO_CONTROLLERS, created

STATEFULSETS = "/apis/apps/v1/namespaces/default/statefulsets"


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


def workload(kind: str, name: str, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name, "tier": "web"}},
                     "template": {"metadata": {"labels": {"app": name, "tier": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}


async def test_the_main_endpoint_ignores_status_and_status_ignores_the_rest(api: httpx.AsyncClient) -> None:
    """With a status subresource, PUT/PATCH of the object leave status as stored, and PUT/PATCH of
    /status change nothing but status (spec and metadata changes are dropped).

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource
    """
    obj = await created(api, INCIDENTS, {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
                                         "metadata": {"name": "i"}, "spec": {"severity": "P2", "summary": "x"},
                                         "status": {"phase": "Resolved"}})
    assert "status" not in obj  # create cannot set status either

    status_put = {**obj, "spec": {**obj["spec"], "severity": "P0"}, "status": {"phase": "Acknowledged"}}
    status_put["metadata"] = {**obj["metadata"], "labels": {"sneaky": "yes"}}
    after_status = (await api.put(f"{INCIDENTS}/i/status", json=status_put)).json()
    assert after_status["status"] == {"phase": "Acknowledged"}
    assert after_status["spec"]["severity"] == "P2" and "labels" not in after_status["metadata"]

    main = await api.patch(f"{INCIDENTS}/i", json={"spec": {"severity": "P1"}, "status": {"phase": "Failed"}},
                           headers=MERGE)
    assert main.json()["spec"]["severity"] == "P1" and main.json()["status"] == {"phase": "Acknowledged"}


async def test_a_status_write_with_a_stale_version_is_a_conflict(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions"""
    obj = await created(api, INCIDENTS, {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
                                         "metadata": {"name": "i"}, "spec": {"severity": "P2", "summary": "x"}})
    await api.patch(f"{INCIDENTS}/i", json={"spec": {"severity": "P1"}}, headers=MERGE)
    response = await api.put(f"{INCIDENTS}/i/status", json={**obj, "status": {"phase": "Acknowledged"}})
    assert response.status_code == 409


@pytest.mark.parametrize(("kind", "path"), [("Deployment", DEPLOYMENTS), ("StatefulSet", STATEFULSETS)])
async def test_the_scale_subresource_reads_and_writes_replicas(api: httpx.AsyncClient, kind: str, path: str) -> None:
    """GET /scale answers an autoscaling/v1 Scale with spec.replicas and the selector as a string;
    PUT and PATCH of it change the workload's spec.replicas.

    https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/#read-scale-of-the-specified-deployment
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#scale-subresource
    """
    obj = await created(api, path, workload(kind, "web"))
    scale = (await api.get(f"{path}/web/scale")).json()
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["metadata"]["name"] == "web" and scale["metadata"]["uid"] == obj["metadata"]["uid"]
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=web,tier=web"

    scale["spec"]["replicas"] = 4
    put = await api.put(f"{path}/web/scale", json=scale)
    assert put.status_code == 200 and put.json()["spec"]["replicas"] == 4
    patched = await api.patch(f"{path}/web/scale", json={"spec": {"replicas": 1}}, headers=MERGE)
    assert patched.json()["spec"]["replicas"] == 1
    assert (await api.get(f"{path}/web")).json()["spec"]["replicas"] == 1

    scale["spec"]["replicas"] = 7  # still the resourceVersion read before the writes above
    stale = await api.put(f"{path}/web/scale", json=scale)
    assert stale.status_code == 409


async def test_a_negative_scale_is_invalid(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/kubernetes-api/autoscaling/scale-v1/"""
    await created(api, DEPLOYMENTS, workload("Deployment", "web"))
    response = await api.patch(f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": -1}}, headers=MERGE)
    assert response.status_code == 422
    assert response.json()["message"] == ('Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: '
                                          "must be greater than or equal to 0")


async def test_the_official_client_scales_a_deployment(api: httpx.AsyncClient,
                                                       apps_v1: kubernetes.client.AppsV1Api) -> None:
    """https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/#patch-scale-of-the-specified-deployment"""
    await created(api, DEPLOYMENTS, workload("Deployment", "web"))
    scale = await asyncio.to_thread(apps_v1.patch_namespaced_deployment_scale, "web", "default",
                                    {"spec": {"replicas": 5}})
    assert scale.spec.replicas == 5 and scale.status.selector == "app=web,tier=web"
    read = await asyncio.to_thread(apps_v1.read_namespaced_deployment_scale, "web", "default")
    assert read.spec.replicas == 5
