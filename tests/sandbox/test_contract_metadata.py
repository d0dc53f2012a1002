"""Contract: object metadata is kept by the sandbox as kube-apiserver keeps it.

uid, creationTimestamp, resourceVersion, generation and generateName, over HTTP as clients see them.
https://kubernetes.io/docs/concepts/overview/working-with-objects/
https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#metadata
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import kubernetes.client
import pytest

from remediator.sandbox import controllers, runner

from .support import CONFIGMAPS, DEPLOYMENTS, INCIDENTS, NO_CONTROLLERS, PODS, created, incident


@pytest.fixture()
def simulations() -> controllers.Simulations:
    """Only the API server: no controller writes between the test's own writes."""
    return NO_CONTROLLERS


def deployment(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}


async def test_uid_and_creation_timestamp_are_set_on_create_and_cannot_be_changed(api: httpx.AsyncClient) -> None:
    """The server sets metadata.uid and creationTimestamp (RFC 3339, UTC, seconds); what a client
    sends for them is ignored on create and on update.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#uids
    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#metadata
    """
    sent = {"metadata": {"name": "settings", "uid": "mine", "creationTimestamp": "2000-01-01T00:00:00Z"},
            "data": {"a": "1"}}
    obj = await created(api, CONFIGMAPS, sent)
    uid, stamp = obj["metadata"]["uid"], obj["metadata"]["creationTimestamp"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", uid)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp) and stamp != "2000-01-01T00:00:00Z"

    obj["metadata"].update(uid="other", creationTimestamp="2001-01-01T00:00:00Z")
    obj["data"] = {"a": "2"}
    updated = (await api.put(f"{CONFIGMAPS}/settings", json=obj)).json()
    assert (updated["metadata"]["uid"], updated["metadata"]["creationTimestamp"]) == (uid, stamp)
    assert updated["data"] == {"a": "2"}


async def test_resource_version_changes_on_every_write_and_grows_across_the_store(api: httpx.AsyncClient) -> None:
    """resourceVersion is an opaque string that changes with every write of an object; in this
    store (as in etcd) it is one counter across all kinds, so it also orders writes globally.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
    """
    first = await created(api, CONFIGMAPS, {"metadata": {"name": "one"}})
    second = await created(api, INCIDENTS, incident("two"))
    first["data"] = {"changed": "yes"}
    third = (await api.put(f"{CONFIGMAPS}/one", json=first)).json()
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, third)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    listed = (await api.get(CONFIGMAPS)).json()
    assert int(listed["metadata"]["resourceVersion"]) >= versions[-1]


async def test_an_update_that_changes_nothing_keeps_the_version_and_sends_no_event(api: httpx.AsyncClient) -> None:
    """A no-op update is not written to etcd: same resourceVersion, no watch event.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
    """
    obj = await created(api, CONFIGMAPS, {"metadata": {"name": "same"}, "data": {"a": "1"}})
    rv = obj["metadata"]["resourceVersion"]
    put = await api.put(f"{CONFIGMAPS}/same", json=obj)
    patched = await api.patch(f"{CONFIGMAPS}/same", json={"data": {"a": "1"}},
                              headers={"Content-Type": "application/merge-patch+json"})
    await created(api, CONFIGMAPS, {"metadata": {"name": "later"}})
    async with api.stream("GET", CONFIGMAPS, params={"watch": "true", "resourceVersion": rv}) as stream:
        first = json.loads(await anext(stream.aiter_lines()))
    assert put.json()["metadata"]["resourceVersion"] == rv
    assert patched.json()["metadata"]["resourceVersion"] == rv
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "later")


async def test_generation_starts_at_1_and_counts_spec_changes_only(api: httpx.AsyncClient) -> None:
    """With the status subresource enabled, metadata.generation is bumped for changes of the spec,
    not for changes of .metadata or .status.

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource
    """
    obj = await created(api, INCIDENTS, incident("gen"))
    assert obj["metadata"]["generation"] == 1
    merge = {"Content-Type": "application/merge-patch+json"}

    labelled = (await api.patch(f"{INCIDENTS}/gen", json={"metadata": {"labels": {"team": "db"}}},
                                headers=merge)).json()
    assert labelled["metadata"]["generation"] == 1
    with_status = (await api.patch(f"{INCIDENTS}/gen/status", json={"status": {"phase": "Acknowledged"}},
                                   headers=merge)).json()
    assert with_status["metadata"]["generation"] == 1 and with_status["status"]["phase"] == "Acknowledged"
    changed = (await api.patch(f"{INCIDENTS}/gen", json={"spec": {"severity": "P0"}}, headers=merge)).json()
    assert changed["metadata"]["generation"] == 2

    deploy = await created(api, DEPLOYMENTS, deployment("web"))
    assert deploy["metadata"]["generation"] == 1
    scaled = (await api.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 3}}, headers=merge)).json()
    assert scaled["metadata"]["generation"] == 2


async def test_kinds_without_a_spec_have_no_generation(api: httpx.AsyncClient) -> None:
    """ConfigMaps, Secrets and Services carry no metadata.generation (their strategies never set it).

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#metadata
    """
    config = await created(api, CONFIGMAPS, {"metadata": {"name": "plain"}})
    service = await created(api, "/api/v1/namespaces/default/services",
                            {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    assert "generation" not in config["metadata"] and "generation" not in service["metadata"]


async def test_generate_name_gets_five_random_characters(api: httpx.AsyncClient) -> None:
    """With generateName and no name, the server appends a random 5-character suffix; the prefix is
    cut so that the name stays within 63 characters.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#generated-values
    """
    first = await created(api, CONFIGMAPS, {"metadata": {"generateName": "run-"}})
    second = await created(api, CONFIGMAPS, {"metadata": {"generateName": "run-"}})
    assert re.fullmatch(r"run-[a-z0-9]{5}", first["metadata"]["name"])
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["generateName"] == "run-"
    long = await created(api, CONFIGMAPS, {"metadata": {"generateName": "x" * 80}})
    assert len(long["metadata"]["name"]) == 63


async def test_create_without_name_or_generate_name_is_invalid(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/names/"""
    response = await api.post(INCIDENTS, json={**incident(""), "metadata": {}})
    assert response.status_code == 422
    assert response.json()["message"] == ('Incident.remediator.dev "" is invalid: metadata.name: '
                                          "Required value: name or generateName is required")


async def test_a_resource_version_sent_on_create_is_refused(api: httpx.AsyncClient) -> None:
    """An object read back from the server cannot be created again as it is: etcd3's store refuses a
    resourceVersion on create with a 500 that has no reason.

    https://github.com/kubernetes/kubernetes/blob/master/staging/src/k8s.io/apiserver/pkg/storage/errors.go
    """
    response = await api.post(CONFIGMAPS, json={"metadata": {"name": "copy", "resourceVersion": "12"}})
    assert response.status_code == 500
    assert response.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": "resourceVersion should not be set on objects to be created",
                               "code": 500}


async def test_a_pod_bound_by_the_scheduler_keeps_its_generation(sandbox: runner.RunningSandbox) -> None:
    """Binding a pod to a node (pods/binding, which the scheduler uses) is no spec update, so the
    pod's generation stays.

    https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#create-binding-of-a-pod
    """
    pods = sandbox.store.resource_type("", "v1", "pods")
    pod = sandbox.store.create(pods, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
                                                                                         "image": "busybox"}]}})
    bound = {**pod, "spec": {**pod["spec"], "nodeName": "sandbox-node"}}
    after = sandbox.store.replace(pods, "default", "p", bound, bump_generation=False)
    assert after["spec"]["nodeName"] == "sandbox-node"
    assert after["metadata"]["generation"] == pod["metadata"]["generation"]


@pytest.mark.parametrize("simulations", [controllers.Simulations()])
async def test_the_simulated_scheduler_binds_pods_without_bumping_generation(
        api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#create-binding-of-a-pod"""
    await created(api, PODS, {"metadata": {"name": "web"},
                              "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})
    for _ in range(100):
        pod = (await api.get(f"{PODS}/web")).json()
        if pod["spec"].get("nodeName"):
            break
        await asyncio.sleep(0.01)
    assert pod["spec"]["nodeName"] == "sandbox-node"
    assert pod["metadata"]["generation"] == 1


async def test_the_official_client_reads_back_what_it_created(core_v1: kubernetes.client.CoreV1Api) -> None:
    """The kubernetes client deserialises the server's metadata into its models.

    https://kubernetes.io/docs/reference/using-api/client-libraries/
    """
    body = kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="typed"), data={"k": "v"})
    made = await asyncio.to_thread(core_v1.create_namespaced_config_map, "default", body)
    read = await asyncio.to_thread(core_v1.read_namespaced_config_map, "typed", "default")
    assert read.metadata.uid == made.metadata.uid and read.metadata.creation_timestamp is not None
    assert read.metadata.resource_version == made.metadata.resource_version and read.data == {"k": "v"}


async def test_a_label_value_with_spaces_is_invalid(api: httpx.AsyncClient) -> None:
    """Label values are at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric; an
    alert name copied into a label as it is can break that.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
    """
    response = await api.post(INCIDENTS, json={**incident("i"), "metadata": {
        "name": "i", "labels": {"alertname": "High CPU"}}})
    assert response.status_code == 422
    assert response.json()["message"] == (
        'Incident.remediator.dev "i" is invalid: metadata.labels: Invalid value: "High CPU": a valid label must '
        "be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
        "an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    bad_key = await api.post(CONFIGMAPS, json={"metadata": {"name": "c", "annotations": {"a b": "x"}}})
    assert bad_key.status_code == 422
    assert bad_key.json()["details"]["causes"][0]["field"] == "metadata.annotations"


async def test_an_owner_reference_needs_its_uid_and_at_most_one_controller(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/"""
    no_uid = await api.post(CONFIGMAPS, json={"metadata": {"name": "c", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "o"}]}})
    assert no_uid.status_code == 422
    assert no_uid.json()["message"] == ('ConfigMap "c" is invalid: metadata.ownerReferences.uid: Invalid value: "": '
                                        "uid must not be empty")
    two = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": n, "uid": n, "controller": True} for n in "ab"]
    response = await api.post(CONFIGMAPS, json={"metadata": {"name": "c", "ownerReferences": two}})
    assert response.status_code == 422
    assert "Only one reference can have Controller set to true" in response.json()["message"]


async def test_a_dry_run_create_is_admitted_and_answered_but_not_stored(api: httpx.AsyncClient) -> None:
    """With dryRun=All the request goes through defaulting and validation, and nothing is persisted.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run
    """
    response = await api.post(INCIDENTS, params={"dryRun": "All"}, json=incident("trial"))
    assert response.status_code == 201
    assert response.json()["spec"]["dryRun"] is False  # defaulted by the schema
    assert (await api.get(f"{INCIDENTS}/trial")).status_code == 404
    invalid = await api.post(INCIDENTS, params={"dryRun": "All"}, json=incident("trial", severity="P9"))
    assert invalid.status_code == 422
    unknown = await api.post(INCIDENTS, params={"dryRun": "Some"}, json=incident("trial"))
    assert unknown.status_code == 400
