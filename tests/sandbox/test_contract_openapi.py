"""Contract: /openapi/v3 and /openapi/v2 publish the built-in kinds' real schemas, so `kubectl explain`
works for them as it does against a cluster.

The schemas are Kubernetes' own, from the kubernetes-validate package (never written by hand).
https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-interface-definition
"""

from __future__ import annotations

import pathlib

import httpx
import pytest
from tests.sandbox.test_kubectl import KUBECTL, Kubectl

KUBECTLS = [pytest.param(KUBECTL, id="kubectl-wheel"),
            pytest.param(pathlib.Path("/usr/bin/kubectl"), id="kubectl-system",
                         marks=pytest.mark.skipif(not pathlib.Path("/usr/bin/kubectl").exists(),
                                                  reason="no older kubectl on this machine"))]


@pytest.mark.parametrize("binary", KUBECTLS)
async def test_kubectl_explains_a_deployments_spec(kubeconfig: pathlib.Path, tmp_path: pathlib.Path,
                                                   binary: pathlib.Path) -> None:
    kubectl = Kubectl(kubeconfig, tmp_path, binary)
    spec = await kubectl("explain", "deployment.spec")
    assert spec.stdout.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
                                  "FIELD: spec <DeploymentSpec>\n")
    assert "    DeploymentSpec is the specification of the desired behavior of the\n    Deployment." in spec.stdout
    for field in ("replicas\t<integer>", "selector\t<LabelSelector> -required-",
                  "template\t<PodTemplateSpec> -required-"):
        assert f"\n  {field}\n" in spec.stdout, spec.stdout
    deep = await kubectl("explain", "pod.spec.containers.imagePullPolicy")
    assert "FIELD: imagePullPolicy <string>" in deep.stdout
    assert "    Image pull policy. One of Always, Never, IfNotPresent." in deep.stdout
    recursive = await kubectl("explain", "service.spec", "--recursive")
    assert "\n  clusterIP\t<string>\n" in recursive.stdout
    assert "\n    port\t<integer> -required-\n" in recursive.stdout


async def test_the_v3_document_of_a_group_carries_the_real_schemas(api: httpx.AsyncClient) -> None:
    """The document kubectl fetches for apps/v1 holds Deployment with its GVK, and every schema it
    refers to (PodSpec from core, ObjectMeta, IntOrString...), with kube-apiserver's merge keys."""
    index = (await api.get("/openapi/v3")).json()
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    schemas = (await api.get(url)).json()["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment",
                                                             "version": "v1"}]
    assert deployment["properties"]["spec"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    referenced = {ref.rpartition("/")[2] for ref in _refs(schemas)}
    assert referenced <= set(schemas)


async def test_openapi_v2_is_served_as_json_to_clients_that_take_json(api: httpx.AsyncClient) -> None:
    """/openapi/v2 (Swagger 2.0) for clients that accept JSON; kubectl asks for protobuf only, which the
    sandbox does not produce, and gets 404 as from a server without the document."""
    document = (await api.get("/openapi/v2", headers={"Accept": "application/json"})).json()
    assert document["swagger"] == "2.0"
    deployment = document["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    protobuf_only = await api.get("/openapi/v2",
                                  headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert protobuf_only.status_code == 404


def _refs(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []
