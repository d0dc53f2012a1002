"""Contract: CustomResourceDefinitions serve, validate, prune and default their objects.

https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from remediator.sandbox import controllers

from .support import INCIDENTS, NO_CONTROLLERS, incident

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.dev/v1/namespaces/default/widgets"


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


def widget_crd() -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.dev"},
            "spec": {"group": "example.dev", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"],
                               "categories": ["all"]},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                       "spec": {"type": "object", "required": ["size"], "properties": {
                                           "size": {"type": "integer", "minimum": 1},
                                           "color": {"type": "string", "default": "blue"}}},
                                       "status": {"type": "object",
                                                  "x-kubernetes-preserve-unknown-fields": True}}}}}]}}


async def test_an_object_that_breaks_the_schema_is_422_with_the_field_path(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    response = await api.post(INCIDENTS, json=incident(severity="P9"))
    assert response.status_code == 422
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Invalid", 422)
    # The Incident's spec has a CEL rule, which kube-apiserver does not run on an object already invalid:
    # its message says so after the schema's errors ("[..., <nil>: Invalid value: ...: validation rules ...]").
    assert status["message"].startswith('Incident.remediator.dev "i" is invalid: [spec.severity: Unsupported value: '
                                        '"P9": supported values: "P0"')
    assert "validation rules were not checked because the object was invalid" in status["message"]
    assert status["details"]["name"] == "i" and status["details"]["kind"] == "Incident"
    assert status["details"]["group"] == "remediator.dev"
    assert status["details"]["causes"][0]["field"] == "spec.severity"
    assert status["details"]["causes"][0]["reason"] == "FieldValueNotSupported"


async def test_unknown_fields_are_pruned_and_defaults_applied(api: httpx.AsyncClient) -> None:
    """Fields the schema does not know are dropped; absent fields with a default get it.

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting
    """
    response = await api.post(INCIDENTS, json={**incident(unknown="x"), "extra": {"a": 1}})
    assert response.status_code == 201, response.text
    obj = response.json()
    assert "unknown" not in obj["spec"] and "extra" not in obj
    assert obj["spec"]["dryRun"] is False
    assert (await api.get(f"{INCIDENTS}/i")).json()["spec"] == obj["spec"]


async def test_the_project_crds_are_established_with_their_names_accepted(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#create-a-customresourcedefinition"""
    crd = (await api.get(f"{CRDS}/incidents.remediator.dev")).json()
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["Established"]["status"] == "True" and conditions["NamesAccepted"]["status"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Incident"
    assert crd["status"]["storedVersions"] == ["v1alpha1"]


async def test_discovery_lists_a_custom_resource_with_short_names_and_categories(api: httpx.AsyncClient) -> None:
    """kubectl finds `inc` and `kubectl get remediator` through discovery.

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#short-names
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#categories
    """
    groups = (await api.get("/apis")).json()
    assert "remediator.dev" in [g["name"] for g in groups["groups"]]
    listing = (await api.get("/apis/remediator.dev/v1alpha1")).json()
    entries = {r["name"]: r for r in listing["resources"]}
    assert entries["incidents"]["kind"] == "Incident" and entries["incidents"]["namespaced"] is True
    assert entries["incidents"]["shortNames"] == ["inc"]
    assert entries["incidents"]["categories"] == ["remediator"]
    assert "incidents/status" in entries


async def test_a_crd_created_over_http_serves_validates_and_defaults(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/"""
    assert (await api.get(WIDGETS)).status_code == 404
    created = await api.post(CRDS, json=widget_crd())
    assert created.status_code == 201, created.text
    ok = await api.post(WIDGETS, json={"apiVersion": "example.dev/v1", "kind": "Widget",
                                       "metadata": {"name": "w"}, "spec": {"size": 2}})
    assert ok.status_code == 201 and ok.json()["spec"] == {"size": 2, "color": "blue"}
    missing = await api.post(WIDGETS, json={"apiVersion": "example.dev/v1", "kind": "Widget",
                                            "metadata": {"name": "x"}, "spec": {}})
    assert missing.status_code == 422
    assert missing.json()["details"]["causes"][0]["field"] == "spec.size"
    assert missing.json()["message"] == 'Widget.example.dev "x" is invalid: spec.size: Required value'


async def test_deleting_a_crd_deletes_its_objects_and_its_endpoint(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#delete-a-customresourcedefinition"""
    await api.post(CRDS, json=widget_crd())
    await api.post(WIDGETS, json={"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"},
                                  "spec": {"size": 1}})
    response = await api.delete(f"{CRDS}/widgets.example.dev")
    assert response.status_code == 200
    gone = await api.get(WIDGETS)
    assert gone.status_code == 404
    assert gone.json()["message"] == "the server could not find the requested resource"
    assert (await api.get("/apis/example.dev/v1")).status_code == 404
    # Created again, it starts empty.
    await api.post(CRDS, json=widget_crd())
    assert (await api.get(WIDGETS)).json()["items"] == []


async def test_a_crd_whose_name_does_not_match_its_names_is_invalid(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#create-a-customresourcedefinition"""
    crd = widget_crd()
    crd["metadata"]["name"] = "gadgets.example.dev"
    response = await api.post(CRDS, json=crd)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.name"
