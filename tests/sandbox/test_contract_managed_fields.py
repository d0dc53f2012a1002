"""Contract: metadata.managedFields on every write, as kube-apiserver's field manager records them.

https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management — a create, an
update and every kind of patch are recorded as the writer's (operation Update; the manager is
`fieldManager`, else the User-Agent up to its first `/`), through /status and /scale with their
subresource; a writer's entries merge, and a field changed or removed leaves its previous owner.
Server-side apply works on /status and /scale too, with ownership per subresource.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
from typing import Any

import httpx
import kubernetes.client
import yaml
from tests.sandbox.test_kubectl import Kubectl

from .support import INCIDENTS, incident

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
SECOND_PRECISION = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# What kube-apiserver records for `kubectl create deployment shop --image=shop:1.0`: the defaulted
# fields too; `.` only where the zero Deployment has no such field (labels, rollingUpdate, items).
KUBECTL_CREATE_DEPLOYMENT = {
    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
    "f:spec": {
        "f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {},
        "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
        "f:template": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:containers": {'k:{"name":"shop"}': {
                    ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                    "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {},
                "f:terminationGracePeriodSeconds": {}}}}}


def owners(obj: dict[str, Any]) -> dict[tuple[str, str, str | None], Any]:
    return {(e["manager"], e["operation"], e.get("subresource")): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields") or []}


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}


async def test_kubectl_create_records_the_fields_kube_apiserver_records(
        kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> None:
    kubectl = Kubectl(kubeconfig, tmp_path)
    await kubectl("create", "deployment", "shop", "--image=shop:1.0")
    created = json.loads((await kubectl("get", "deployment", "shop", "-o", "json", "--show-managed-fields")).stdout)
    [entry] = [e for e in created["metadata"]["managedFields"] if e["manager"] == "kubectl-create"]
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
        "fieldsV1": KUBECTL_CREATE_DEPLOYMENT}
    assert SECOND_PRECISION.match(entry["time"])


async def test_the_official_client_is_recorded_by_its_user_agent(
        kubernetes_client: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(kubernetes_client)
    created = await asyncio.to_thread(core.create_namespaced_config_map, "default", {
        "metadata": {"name": "settings"}, "data": {"mode": "fast"}})
    [entry] = created.metadata.managed_fields
    assert (entry.manager, entry.operation, entry.fields_v1) == (
        "OpenAPI-Generator", "Update", {"f:data": {".": {}, "f:mode": {}}})


async def test_each_kind_of_patch_is_its_managers_update_and_takes_what_it_changes(api: httpx.AsyncClient) -> None:
    created = await api.post(CONFIGMAPS, params={"fieldManager": "creator"}, json={
        "metadata": {"name": "settings"}, "data": {"mode": "fast", "size": "s"}})
    assert owners(created.json()) == {("creator", "Update", None): {"f:data": {".": {}, "f:mode": {}, "f:size": {}}}}
    await api.patch(f"{CONFIGMAPS}/settings", params={"fieldManager": "tuner"}, json={"data": {"mode": "slow"}},
                    headers=MERGE)
    await api.patch(f"{CONFIGMAPS}/settings", params={"fieldManager": "labeller"},
                    json={"metadata": {"labels": {"team": "web"}}},
                    headers={"Content-Type": "application/strategic-merge-patch+json"})
    removed = await api.patch(f"{CONFIGMAPS}/settings", params={"fieldManager": "remover"},
                              json=[{"op": "remove", "path": "/data/size"}],
                              headers={"Content-Type": "application/json-patch+json"})
    # The remover added nothing, so it owns nothing; the creator keeps only the data map itself.
    assert owners(removed.json()) == {
        ("creator", "Update", None): {"f:data": {}},
        ("tuner", "Update", None): {"f:data": {"f:mode": {}}},
        ("labeller", "Update", None): {"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}}


async def test_a_managers_writes_merge_into_one_entry(api: httpx.AsyncClient) -> None:
    await api.post(CONFIGMAPS, params={"fieldManager": "creator"}, json={"metadata": {"name": "settings"}})
    await api.patch(f"{CONFIGMAPS}/settings", params={"fieldManager": "tuner"}, json={"data": {"mode": "slow"}},
                    headers=MERGE)
    second = await api.put(f"{CONFIGMAPS}/settings", params={"fieldManager": "tuner"}, json={
        "metadata": {"name": "settings"}, "data": {"mode": "slow", "size": "m"}})
    tuner = [e for e in second.json()["metadata"]["managedFields"] if e["manager"] == "tuner"]
    assert [e["fieldsV1"] for e in tuner] == [{"f:data": {".": {}, "f:mode": {}, "f:size": {}}}]


async def test_objects_written_alike_keep_their_own_fields_when_one_changes(api: httpx.AsyncClient) -> None:
    # The sandbox shares equal managedFields trees between objects: a write to one must not show in the other.
    for name in ("first", "second"):
        await api.post(CONFIGMAPS, params={"fieldManager": "creator"}, json={
            "metadata": {"name": name}, "data": {"mode": "fast", "size": "s"}})
    await api.patch(f"{CONFIGMAPS}/first", params={"fieldManager": "creator"},
                    json={"data": {"size": None, "zone": "a"}}, headers=MERGE)
    await api.patch(f"{CONFIGMAPS}/first", params={"fieldManager": "tuner"}, json={"data": {"mode": "slow"}},
                    headers=MERGE)
    first = (await api.get(f"{CONFIGMAPS}/first")).json()
    second = (await api.get(f"{CONFIGMAPS}/second")).json()
    assert owners(first) == {("creator", "Update", None): {"f:data": {".": {}, "f:zone": {}}},
                             ("tuner", "Update", None): {"f:data": {"f:mode": {}}}}
    assert owners(second) == {("creator", "Update", None): {"f:data": {".": {}, "f:mode": {}, "f:size": {}}}}


async def test_an_unchanged_write_records_nothing(api: httpx.AsyncClient) -> None:
    created = await api.post(CONFIGMAPS, params={"fieldManager": "creator"}, json={
        "metadata": {"name": "settings"}, "data": {"mode": "fast"}})
    same = await api.patch(f"{CONFIGMAPS}/settings", params={"fieldManager": "tuner"},
                           json={"data": {"mode": "fast"}}, headers=MERGE)
    assert same.json()["metadata"]["managedFields"] == created.json()["metadata"]["managedFields"]
    assert same.json()["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]


async def test_status_and_scale_writes_are_recorded_with_their_subresource(api: httpx.AsyncClient) -> None:
    await api.post(INCIDENTS, params={"fieldManager": "receiver"}, json=incident("web-down"))
    status = await api.patch(f"{INCIDENTS}/web-down/status", params={"fieldManager": "remediator"},
                             json={"status": {"phase": "Mitigating"}}, headers=MERGE)
    assert owners(status.json())[("remediator", "Update", "status")] == {"f:status": {".": {}, "f:phase": {}}}
    assert "f:status" not in json.dumps(owners(status.json())[("receiver", "Update", None)])

    await api.post(DEPLOYMENTS, params={"fieldManager": "deployer"}, json=deployment("web", 1))
    scaled = await api.patch(f"{DEPLOYMENTS}/web/scale", params={"fieldManager": "autoscaler"},
                             json={"spec": {"replicas": 3}}, headers=MERGE)
    assert scaled.json()["spec"]["replicas"] == 3
    after = owners((await api.get(f"{DEPLOYMENTS}/web")).json())
    assert after[("autoscaler", "Update", "scale")] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in after[("deployer", "Update", None)]["f:spec"]


async def test_an_apply_after_a_create_conflicts_with_the_creator_by_name(api: httpx.AsyncClient) -> None:
    """No before-first-apply any more where the create was recorded: the conflict names the creator."""
    created = await api.post(CONFIGMAPS, params={"fieldManager": "kubectl-create"}, json={
        "metadata": {"name": "settings"}, "data": {"mode": "fast"}})
    when = created.json()["metadata"]["managedFields"][0]["time"]
    refused = await api.patch(f"{CONFIGMAPS}/settings", params={"fieldManager": "ops"}, headers=APPLY,
                              content=yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": "settings"}, "data": {"mode": "slow"}}))
    assert refused.status_code == 409
    assert refused.json()["message"] == \
        f'Apply failed with 1 conflict: conflict with "kubectl-create" using v1 at {when}: .data.mode'


async def test_apply_to_status_owns_the_status_as_that_subresources(api: httpx.AsyncClient) -> None:
    await api.post(INCIDENTS, params={"fieldManager": "receiver"}, json=incident("web-down"))
    body = {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": "web-down"},
            "spec": {"summary": "ignored through /status"}, "status": {"phase": "Mitigating"}}
    applied = await api.patch(f"{INCIDENTS}/web-down/status", params={"fieldManager": "remediator"},
                              headers=APPLY, content=yaml.safe_dump(body))
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"]["phase"] == "Mitigating"
    assert applied.json()["spec"]["summary"] == incident("web-down")["spec"]["summary"]
    assert owners(applied.json())[("remediator", "Apply", "status")] == {"f:status": {"f:phase": {}}}
    # Apply entries come first, as kube-apiserver sorts them.
    assert applied.json()["metadata"]["managedFields"][0]["operation"] == "Apply"

    await api.patch(f"{INCIDENTS}/web-down/status", params={"fieldManager": "person"},
                    json={"status": {"phase": "Resolved"}}, headers=MERGE)
    body["status"] = {"phase": "Failed"}
    refused = await api.patch(f"{INCIDENTS}/web-down/status", params={"fieldManager": "remediator"},
                              headers=APPLY, content=yaml.safe_dump(body))
    assert refused.status_code == 409
    assert refused.json()["message"].startswith(
        'Apply failed with 1 conflict: conflict with "person" with subresource "status" using '
        "remediator.dev/v1alpha1 at ")
    assert refused.json()["message"].endswith(": .status.phase")
    forced = await api.patch(f"{INCIDENTS}/web-down/status", params={"fieldManager": "remediator", "force": "true"},
                             headers=APPLY, content=yaml.safe_dump(body))
    assert forced.json()["status"]["phase"] == "Failed"
    assert ("person", "Update", "status") not in owners(forced.json())


async def test_apply_to_scale_owns_the_replicas_as_scales(api: httpx.AsyncClient) -> None:
    await api.post(DEPLOYMENTS, params={"fieldManager": "deployer"}, json=deployment("web", 2))
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 4}}
    refused = await api.patch(f"{DEPLOYMENTS}/web/scale", params={"fieldManager": "hpa"}, headers=APPLY,
                              content=yaml.safe_dump(scale))
    assert refused.status_code == 409
    assert refused.json()["message"].startswith('Apply failed with 1 conflict: conflict with "deployer" using apps/v1')
    forced = await api.patch(f"{DEPLOYMENTS}/web/scale", params={"fieldManager": "hpa", "force": "true"},
                             headers=APPLY, content=yaml.safe_dump(scale))
    assert forced.status_code == 200, forced.text
    assert (forced.json()["kind"], forced.json()["spec"]["replicas"]) == ("Scale", 4)
    after = owners((await api.get(f"{DEPLOYMENTS}/web")).json())
    assert after[("hpa", "Apply", "scale")] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in after[("deployer", "Update", None)]["f:spec"]


async def test_apply_to_the_status_of_a_missing_object_is_not_found(api: httpx.AsyncClient) -> None:
    missing = await api.patch(f"{INCIDENTS}/nothing/status", params={"fieldManager": "remediator"}, headers=APPLY,
                              content=yaml.safe_dump({"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
                                                      "metadata": {"name": "nothing"}, "status": {"phase": "x"}}))
    assert missing.status_code == 404
