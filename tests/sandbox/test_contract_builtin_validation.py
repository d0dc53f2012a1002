"""Contract: a workload's counts are decoded as Go int32 and validated non-negative, as kube-apiserver does.

https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/#DeploymentSpec
(replicas, minReadySeconds, revisionHistoryLimit are int32) and apps/validation's ValidateNonnegativeField.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from remediator.sandbox import controllers

from .support import DEPLOYMENTS, MERGE, NO_CONTROLLERS, created, template

STATEFULSETS = "/apis/apps/v1/namespaces/default/statefulsets"


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


def workload(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "shop"}},
                                                 "template": template(), **spec}}


@pytest.mark.parametrize(("replicas", "described"), [
    (2147483648, "number 2147483648"),
    (-2147483649, "number -2147483649"),
    ("3", "string"),
    (1.5, "number 1.5"),
    (True, "bool"),
])
async def test_a_replica_count_that_is_not_an_int32_is_400(api: httpx.AsyncClient, replicas: Any,
                                                           described: str) -> None:
    """The body does not decode into DeploymentSpec: 400 BadRequest with encoding/json's words."""
    response = await api.post(DEPLOYMENTS, json=workload(replicas=replicas))
    assert response.status_code == 400
    assert response.json()["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        f"{described} into Go struct field DeploymentSpec.spec.replicas of type int32")


async def test_a_negative_count_is_422(api: httpx.AsyncClient) -> None:
    """replicas, minReadySeconds and revisionHistoryLimit must be >= 0, on create and on update."""
    response = await api.post(DEPLOYMENTS, json=workload(replicas=-5))
    assert response.status_code == 422
    assert response.json()["message"] == ('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -5: '
                                          "must be greater than or equal to 0")
    response = await api.post(STATEFULSETS, json={**workload("db", replicas=1, minReadySeconds=-1),
                                                  "spec": {**workload()["spec"], "serviceName": "db",
                                                           "minReadySeconds": -1}})
    assert response.json()["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.minReadySeconds",
                                                     "message": "Invalid value: -1: must be greater than or equal "
                                                                "to 0"}]
    await created(api, DEPLOYMENTS, workload(replicas=2))
    response = await api.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": -1}}, headers=MERGE)
    assert response.status_code == 422
    assert (await api.get(f"{DEPLOYMENTS}/web")).json()["spec"]["replicas"] == 2


async def test_the_scale_subresource_decodes_an_int32_too(api: httpx.AsyncClient) -> None:
    """PUT/PATCH of autoscaling/v1 Scale: 400 past int32, 422 below zero."""
    await created(api, DEPLOYMENTS, workload(replicas=2))
    response = await api.patch(f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": 2147483648}}, headers=MERGE)
    assert response.status_code == 400
    assert response.json()["message"] == ('Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '
                                          "number 2147483648 into Go struct field ScaleSpec.spec.replicas of type "
                                          "int32")
    response = await api.patch(f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": -5}}, headers=MERGE)
    assert response.status_code == 422
    assert (await api.get(f"{DEPLOYMENTS}/web")).json()["spec"]["replicas"] == 2
