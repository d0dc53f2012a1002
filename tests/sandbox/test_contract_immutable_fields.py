"""Contract: fields of built-in kinds that an update may not change are refused with 422.

https://kubernetes.io/docs/concepts/overview/working-with-objects/
"""

from __future__ import annotations

import httpx
import pytest

from remediator.sandbox import controllers

from .support import NO_CONTROLLERS, created, template

NS = "/namespaces/default"


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


async def test_a_workload_selector_and_a_jobs_template_are_immutable(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#label-selector-updates
    https://kubernetes.io/docs/concepts/workloads/controllers/job/#mutable-scheduling-directives
    """
    merge = {"Content-Type": "application/merge-patch+json"}
    await created(api, f"/apis/apps/v1{NS}/deployments", {
        "metadata": {"name": "shop"}, "spec": {"selector": {"matchLabels": {"app": "shop"}}, "template": template()}})
    response = await api.patch(f"/apis/apps/v1{NS}/deployments/shop", headers=merge, json={"spec": {
        "selector": {"matchLabels": {"app": "shop2"}},
        "template": {"metadata": {"labels": {"app": "shop2"}}}}})
    assert response.status_code == 422
    assert response.json()["message"] == (
        'Deployment.apps "shop" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
        'map[string]string{"app":"shop2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable')

    await created(api, f"/apis/batch/v1{NS}/jobs", {"metadata": {"name": "migrate"},
                                                    "spec": {"template": template(restartPolicy="Never")}})
    rerun = await api.patch(f"/apis/batch/v1{NS}/jobs/migrate", headers=merge, json={"spec": {"template": {
        "spec": {"containers": [{"name": "app", "image": "shop:2.0"}]}}}})
    assert rerun.status_code == 422
    assert rerun.json()["details"]["causes"][0]["field"] == "spec.template"
    suspended = await api.patch(f"/apis/batch/v1{NS}/jobs/migrate", headers=merge, json={"spec": {"suspend": True}})
    assert suspended.status_code == 200


async def test_an_immutable_config_map_keeps_its_data(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/configuration/configmap/#configmap-immutable"""
    await created(api, f"/api/v1{NS}/configmaps", {"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True})
    response = await api.put(f"/api/v1{NS}/configmaps/c", json={"metadata": {"name": "c"}, "data": {"a": "2"},
                                                               "immutable": True})
    assert response.status_code == 422
    assert response.json()["message"] == ('ConfigMap "c" is invalid: data: Forbidden: field is immutable when '
                                          "`immutable` is set")
    labelled = await api.patch(f"/api/v1{NS}/configmaps/c", json={"metadata": {"labels": {"x": "y"}}},
                               headers={"Content-Type": "application/merge-patch+json"})
    assert labelled.status_code == 200
