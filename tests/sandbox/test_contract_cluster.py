"""Contract: what every cluster has and does besides storing objects — its node, the namespaces it
cannot lose, namespace termination, default ServiceAccounts, Service IPs and Event validation.
"""

from __future__ import annotations

import asyncio
import ipaddress
import pathlib
from typing import Any

import httpx
import kubernetes.client
import pytest
from tests.sandbox.test_kubectl import Kubectl

from .support import PODS, created

NAMESPACES = "/api/v1/namespaces"
SERVICES = "/api/v1/namespaces/default/services"
EVENTS = "/api/v1/namespaces/default/events"


async def eventually(api: httpx.AsyncClient, path: str, status: int = 200) -> httpx.Response:
    """GET `path` until it answers `status` (what a controller does takes a moment)."""
    for _ in range(100):
        response = await api.get(path)
        if response.status_code == status:
            return response
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never answered {status}: {response.text}")


# -- the node -----------------------------------------------------------------------------------------


async def test_the_node_pods_run_on_is_a_ready_node(api: httpx.AsyncClient) -> None:
    """`sandbox-node` is listed, Ready, with the labels a kubelet sets, and pods are bound to it.
    https://kubernetes.io/docs/reference/node/node-status/"""
    nodes = (await api.get("/api/v1/nodes")).json()
    assert nodes["kind"] == "NodeList"
    [node] = nodes["items"]
    assert node["metadata"]["name"] == "sandbox-node"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "sandbox-node"
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True" and ready[0]["reason"] == "KubeletReady"
    await created(api, PODS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    for _ in range(100):
        pod = (await api.get(f"{PODS}/p")).json()
        if pod["spec"].get("nodeName"):
            break
        await asyncio.sleep(0.02)
    assert pod["spec"]["nodeName"] == node["metadata"]["name"]


async def test_the_official_client_reads_each_listed_node(core_v1: kubernetes.client.CoreV1Api) -> None:
    """The official client's e2e node test: every listed node can be read and has labels."""

    def read_every_node() -> None:
        for item in core_v1.list_node().items:
            node = core_v1.read_node(name=item.metadata.name)
            assert isinstance(node.metadata.labels, dict) and node.metadata.labels

    await asyncio.to_thread(read_every_node)


# -- namespaces ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public", "kube-node-lease"])
async def test_the_system_namespaces_may_not_be_deleted(api: httpx.AsyncClient, name: str) -> None:
    """The NamespaceLifecycle admission plugin forbids deleting them (403), even as a dry run.
    https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#namespacelifecycle"""
    for params in ({}, {"dryRun": "All"}):
        response = await api.delete(f"{NAMESPACES}/{name}", params=params)
        assert response.status_code == 403
        assert response.json() == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            "reason": "Forbidden", "details": {"name": name, "kind": "namespaces"}, "code": 403}
    assert (await api.get(f"{NAMESPACES}/{name}")).json()["status"]["phase"] == "Active"


async def test_a_deleted_namespace_is_terminating_until_its_objects_are_gone(api: httpx.AsyncClient) -> None:
    """Deleting a namespace marks it Terminating (deletionTimestamp, status.phase) while objects in it
    remain — here one held by a finalizer; nothing new may be created in it (403); when the last
    object goes, so does the namespace.
    https://kubernetes.io/docs/tasks/administer-cluster/namespaces/#deleting-a-namespace"""
    await created(api, NAMESPACES, {"metadata": {"name": "shop"}})
    held = "/api/v1/namespaces/shop/configmaps"
    await created(api, held, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})

    deleted = await api.delete(f"{NAMESPACES}/shop")
    assert deleted.status_code == 200
    namespace = (await api.get(f"{NAMESPACES}/shop")).json()
    assert namespace["status"]["phase"] == "Terminating"
    assert namespace["metadata"]["deletionTimestamp"]

    refused = await api.post(held, json={"metadata": {"name": "new"}})
    assert refused.status_code == 403
    assert refused.json()["message"] == ('configmaps "new" is forbidden: unable to create new content in '
                                         "namespace shop because it is being terminated")

    await api.patch(f"{held}/held", json={"metadata": {"finalizers": None}},
                    headers={"Content-Type": "application/merge-patch+json"})
    await eventually(api, f"{NAMESPACES}/shop", status=404)


async def test_every_new_namespace_gets_a_default_service_account(api: httpx.AsyncClient) -> None:
    """The ServiceAccount controller creates `default` in each namespace, and again when it is deleted.
    https://kubernetes.io/docs/concepts/security/service-accounts/#default-service-accounts"""
    await created(api, NAMESPACES, {"metadata": {"name": "shop"}})
    account = (await eventually(api, "/api/v1/namespaces/shop/serviceaccounts/default")).json()
    assert account["metadata"]["namespace"] == "shop"
    await eventually(api, "/api/v1/namespaces/kube-system/serviceaccounts/default")

    await api.delete("/api/v1/namespaces/shop/serviceaccounts/default")
    again = (await eventually(api, "/api/v1/namespaces/shop/serviceaccounts/default")).json()
    assert again["metadata"]["uid"] != account["metadata"]["uid"]


# -- services -----------------------------------------------------------------------------------------


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec}}


async def test_a_service_gets_its_own_cluster_ip_from_the_service_cidr(api: httpx.AsyncClient) -> None:
    """A ClusterIP Service is allocated an address from the service CIDR, never one already taken, and
    its status starts as `loadBalancer: {}`.
    https://kubernetes.io/docs/concepts/services-networking/cluster-ip-allocation/"""
    first = await created(api, SERVICES, service("web"))
    second = await created(api, SERVICES, service("api"))
    for svc in (first, second):
        assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in ipaddress.ip_network("10.96.0.0/12")
        assert svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]
        assert svc["spec"]["ipFamilies"] == ["IPv4"] and svc["spec"]["ipFamilyPolicy"] == "SingleStack"
        assert svc["status"] == {"loadBalancer": {}}
    assert first["spec"]["clusterIP"] != second["spec"]["clusterIP"]
    headless = await created(api, SERVICES, service("db", clusterIP="None"))
    assert headless["spec"]["clusterIPs"] == ["None"]


async def test_a_cluster_ip_already_taken_is_invalid(api: httpx.AsyncClient) -> None:
    taken = (await created(api, SERVICES, service("web")))["spec"]["clusterIP"]
    response = await api.post(SERVICES, json=service("api", clusterIP=taken))
    assert response.status_code == 422
    assert response.json()["message"] == (
        f'Service "api" is invalid: spec.clusterIPs: Invalid value: []string{{"{taken}"}}: '
        f"failed to allocate IP {taken}: provided IP is already allocated")
    outside = await api.post(SERVICES, json=service("api", clusterIP="192.168.0.1"))
    assert outside.status_code == 422
    assert "The range of valid IPs is 10.96.0.0/12" in outside.json()["message"]


async def test_node_port_services_get_node_ports(api: httpx.AsyncClient) -> None:
    svc = await created(api, SERVICES, service("web", type="NodePort", ports=[{"port": 80}, {"port": 443}]))
    ports = [port["nodePort"] for port in svc["spec"]["ports"]]
    assert all(30000 <= port <= 32767 for port in ports) and len(set(ports)) == 2
    clash = await api.post(SERVICES, json=service("api", type="NodePort",
                                                  ports=[{"port": 80, "nodePort": ports[0]}]))
    assert clash.status_code == 422
    assert clash.json()["message"] == (f'Service "api" is invalid: spec.ports[0].nodePort: Invalid value: '
                                       f"{ports[0]}: provided port is already allocated")


async def test_an_update_that_leaves_the_cluster_ip_out_keeps_it(api: httpx.AsyncClient) -> None:
    """`kubectl replace -f` of a manifest without clusterIP keeps the allocated one (kube-apiserver
    carries allocated values over rather than failing the immutable-field check)."""
    svc = await created(api, SERVICES, service("web"))
    body = {**service("web"), "metadata": {"name": "web", "resourceVersion": svc["metadata"]["resourceVersion"]}}
    replaced = await api.put(f"{SERVICES}/web", json=body)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["spec"]["clusterIP"] == svc["spec"]["clusterIP"]


async def test_the_official_clients_service_flow(core_v1: kubernetes.client.CoreV1Api) -> None:
    """The official client's e2e service test: create, read (with a status), patch in a second port."""
    await asyncio.to_thread(_service_flow, core_v1)


def _service_flow(core_v1: kubernetes.client.CoreV1Api) -> None:
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"labels": {"name": "frontend"},
                                                                    "name": "frontend"},
                "spec": {"ports": [{"name": "port", "port": 80, "protocol": "TCP", "targetPort": 80}],
                         "selector": {"name": "frontend"}}}
    core_v1.create_namespaced_service(body=manifest, namespace="default")
    read = core_v1.read_namespaced_service(name="frontend", namespace="default")
    assert read.status and read.spec.cluster_ip
    manifest["spec"]["ports"] = [{"name": "new", "port": 8080, "protocol": "TCP", "targetPort": 8080}]
    patched = core_v1.patch_namespaced_service(body=manifest, name="frontend", namespace="default")
    assert len(patched.spec.ports) == 2
    core_v1.delete_namespaced_service(name="frontend", namespace="default")


# -- events -------------------------------------------------------------------------------------------


def event(name: str, involved_namespace: str | None = "default", **fields: Any) -> dict[str, Any]:
    involved = {"kind": "Pod", "name": "web"} | ({"namespace": involved_namespace} if involved_namespace else {})
    return {"metadata": {"name": name}, "involvedObject": involved, "reason": "Pulled", "message": "ok",
            **fields}


async def test_an_event_about_an_object_in_another_namespace_is_invalid(api: httpx.AsyncClient) -> None:
    """core/v1 Events: involvedObject.namespace must be the Event's namespace (legacyValidateEvent).
    https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/"""
    response = await api.post(EVENTS, json=event("e1", "kube-system"))
    assert response.status_code == 422
    assert response.json()["message"] == ('Event "e1" is invalid: involvedObject.namespace: Invalid value: '
                                          '"kube-system": does not match event.namespace')
    await created(api, EVENTS, event("e2"))
    await created(api, EVENTS, event("e3", None))  # no namespace: "default" is accepted, for old clients
    other = await api.post("/api/v1/namespaces/kube-system/events", json=event("e4", None))
    assert other.status_code == 422


async def test_an_event_with_an_event_time_needs_its_reporting_fields(api: httpx.AsyncClient) -> None:
    """An Event with eventTime (the new style) requires reportingController, reportingInstance, action
    and reason."""
    response = await api.post(EVENTS, json=event("e1", eventTime="2026-07-01T12:00:00.000000Z", reason=""))
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "reportingController"},
        {"reason": "FieldValueInvalid", "field": "reportingController",
         "message": "Invalid value: \"\": name part must be non-empty"},
        {"reason": "FieldValueInvalid", "field": "reportingController",
         "message": "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and "
                    "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                    "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"},
        {"reason": "FieldValueRequired", "message": "Required value", "field": "reportingInstance"},
        {"reason": "FieldValueRequired", "message": "Required value", "field": "action"},
        {"reason": "FieldValueRequired", "message": "Required value", "field": "reason"},
    ]
    good = event("e2", eventTime="2026-07-01T12:00:00.000000Z", reportingComponent="example.com/ctl",
                 reportingInstance="ctl-1", action="Pull")
    await created(api, EVENTS, good)


async def test_kubectl_shows_the_node_health_and_the_protected_namespaces(
        kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """What a user checking a new cluster types: `get nodes`, `get --raw /readyz?verbose`, and a
    mistaken `delete namespace default`."""
    kubectl = Kubectl(kubeconfig, tmp_path)
    nodes = await kubectl("get", "nodes")
    assert nodes.stdout.splitlines()[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert nodes.stdout.splitlines()[1].split()[:3] == ["sandbox-node", "Ready", "control-plane"]
    ready = await kubectl("get", "--raw", "/readyz?verbose")
    assert ready.stdout.endswith("readyz check passed\n")
    refused = await kubectl("delete", "namespace", "default", check=False)
    assert refused.code == 1
    assert 'namespaces "default" is forbidden: this namespace may not be deleted' in refused.stderr
