"""Contract: deletion with finalizers, and garbage collection of dependents through ownerReferences.

https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/
https://kubernetes.io/docs/concepts/architecture/garbage-collection/
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import kubernetes.client
import pytest

from remediator.sandbox import controllers, runner

from .support import CONFIGMAPS, DEPLOYMENTS, INCIDENTS, MERGE, NO_CONTROLLERS, PODS, created, incident

REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"
JOBS = "/apis/batch/v1/namespaces/default/jobs"


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


def owner_reference(owner: dict[str, Any], kind: str = "ConfigMap", api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"]}


async def names(api: httpx.AsyncClient, path: str) -> set[str]:
    return {item["metadata"]["name"] for item in (await api.get(path)).json()["items"]}


async def test_deleting_an_object_with_finalizers_only_marks_it(api: httpx.AsyncClient) -> None:
    """DELETE of an object with finalizers answers with the object, now carrying deletionTimestamp
    (and deletionGracePeriodSeconds 0), which stays readable; deleting again changes nothing.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/#how-finalizers-work
    """
    await created(api, INCIDENTS, incident("held", finalizers=["remediator.dev/cleanup"]))
    response = await api.delete(f"{INCIDENTS}/held")
    assert response.status_code in (200, 202)
    marked = response.json()
    assert marked["kind"] == "Incident" and marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    assert marked["metadata"]["finalizers"] == ["remediator.dev/cleanup"]
    # Controllers learn that the object is going away from its generation too (markAsDeleting).
    assert marked["metadata"]["generation"] == 2
    again = await api.delete(f"{INCIDENTS}/held")
    assert again.json()["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    read = (await api.get(f"{INCIDENTS}/held")).json()
    assert read["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]


async def test_removing_the_last_finalizer_deletes_the_object(api: httpx.AsyncClient) -> None:
    """Once the last finalizer is removed from an object marked for deletion, it is deleted and its
    watchers get DELETED.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/#how-finalizers-work
    """
    await created(api, INCIDENTS, incident("held", finalizers=["a.remediator.dev/x", "b.remediator.dev/y"]))
    marked = (await api.delete(f"{INCIDENTS}/held")).json()
    rv = marked["metadata"]["resourceVersion"]
    async with api.stream("GET", INCIDENTS, params={"watch": "1", "resourceVersion": rv}) as stream:
        lines = stream.aiter_lines()
        one_left = await api.patch(f"{INCIDENTS}/held", json={"metadata": {"finalizers": ["b.remediator.dev/y"]}},
                                   headers=MERGE)
        assert one_left.status_code == 200
        none_left = await api.patch(f"{INCIDENTS}/held", json={"metadata": {"finalizers": None}}, headers=MERGE)
        assert none_left.status_code == 200
        events = [json.loads(await anext(lines)) for _ in range(2)]
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert (await api.get(f"{INCIDENTS}/held")).status_code == 404


async def test_no_finalizer_can_be_added_while_deleting(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/"""
    await created(api, INCIDENTS, incident("held", finalizers=["remediator.dev/cleanup"]))
    await api.delete(f"{INCIDENTS}/held")
    response = await api.patch(f"{INCIDENTS}/held",
                               json={"metadata": {"finalizers": ["remediator.dev/cleanup", "x.io/new"]}},
                               headers=MERGE)
    assert response.status_code == 422
    status = response.json()
    assert status["message"] == (
        'Incident.remediator.dev "held" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        'added if the object is being deleted, found new finalizers []string{"x.io/new"}')
    assert status["details"]["causes"][0]["field"] == "metadata.finalizers"


async def test_dependents_are_deleted_in_the_background(api: httpx.AsyncClient) -> None:
    """Deleting an owner deletes the objects whose ownerReferences name it (default Background).

    https://kubernetes.io/docs/concepts/architecture/garbage-collection/#background-deletion
    """
    owner = await created(api, CONFIGMAPS, {"metadata": {"name": "owner"}})
    await created(api, CONFIGMAPS, {"metadata": {"name": "child", "ownerReferences": [owner_reference(owner)]}})
    await created(api, CONFIGMAPS, {"metadata": {"name": "bystander"}})
    response = await api.delete(f"{CONFIGMAPS}/owner")
    assert response.status_code == 200
    assert await names(api, CONFIGMAPS) == {"bystander"}


async def test_a_dependent_with_another_live_owner_stays(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/"""
    first = await created(api, CONFIGMAPS, {"metadata": {"name": "first"}})
    second = await created(api, CONFIGMAPS, {"metadata": {"name": "second"}})
    await created(api, CONFIGMAPS, {"metadata": {"name": "shared", "ownerReferences": [
        owner_reference(first), owner_reference(second)]}})
    await api.delete(f"{CONFIGMAPS}/first")
    assert await names(api, CONFIGMAPS) == {"second", "shared"}
    await api.delete(f"{CONFIGMAPS}/second")
    assert await names(api, CONFIGMAPS) == set()


async def test_orphan_propagation_keeps_dependents_without_the_owner_reference(api: httpx.AsyncClient) -> None:
    """propagationPolicy=Orphan deletes only the owner; dependents lose their reference to it.

    https://kubernetes.io/docs/tasks/administer-cluster/use-cascading-deletion/#set-orphan-deletion-policy
    """
    owner = await created(api, CONFIGMAPS, {"metadata": {"name": "owner"}})
    await created(api, CONFIGMAPS, {"metadata": {"name": "child", "ownerReferences": [owner_reference(owner)]}})
    response = await api.request("DELETE", f"{CONFIGMAPS}/owner", json={"kind": "DeleteOptions",
                                                                       "propagationPolicy": "Orphan"})
    assert response.status_code == 200
    child = (await api.get(f"{CONFIGMAPS}/child")).json()
    assert "ownerReferences" not in child["metadata"]


async def test_foreground_deletion_deletes_dependents_before_the_owner(api: httpx.AsyncClient) -> None:
    """In the foreground the owner gets deletionTimestamp and the foregroundDeletion finalizer, then
    its dependents are deleted, then the owner.

    https://kubernetes.io/docs/concepts/architecture/garbage-collection/#foreground-deletion
    """
    owner = await created(api, CONFIGMAPS, {"metadata": {"name": "owner"}})
    await created(api, CONFIGMAPS, {"metadata": {"name": "child", "ownerReferences": [owner_reference(owner)],
                                                 "finalizers": ["remediator.dev/hold"]}})
    response = await api.delete(f"{CONFIGMAPS}/owner", params={"propagationPolicy": "Foreground"})
    assert response.status_code == 200
    waiting = (await api.get(f"{CONFIGMAPS}/owner")).json()
    assert waiting["metadata"]["finalizers"] == ["foregroundDeletion"] and waiting["metadata"]["deletionTimestamp"]
    assert (await api.get(f"{CONFIGMAPS}/child")).json()["metadata"]["deletionTimestamp"]

    await api.patch(f"{CONFIGMAPS}/child", json={"metadata": {"finalizers": []}}, headers=MERGE)
    assert await names(api, CONFIGMAPS) == set()


async def test_an_unknown_propagation_policy_is_invalid(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/"""
    await created(api, CONFIGMAPS, {"metadata": {"name": "x"}})
    response = await api.delete(f"{CONFIGMAPS}/x", params={"propagationPolicy": "Sometimes"})
    assert response.status_code == 422
    assert response.json()["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sometimes": '
        'supported values: "Foreground", "Background", "Orphan"')


async def test_a_uid_precondition_that_does_not_hold_is_a_conflict(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/"""
    obj = await created(api, CONFIGMAPS, {"metadata": {"name": "x"}})
    response = await api.request("DELETE", f"{CONFIGMAPS}/x", json={"preconditions": {"uid": "other"}})
    assert response.status_code == 409
    assert response.json()["message"] == (
        f'Operation cannot be fulfilled on configmaps "x": Precondition failed: UID in precondition: other, '
        f'UID in object meta: {obj["metadata"]["uid"]}')


async def test_a_dry_run_delete_deletes_nothing(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run"""
    await created(api, CONFIGMAPS, {"metadata": {"name": "x"}})
    response = await api.delete(f"{CONFIGMAPS}/x", params={"dryRun": "All"})
    assert response.status_code == 200 and response.json()["metadata"]["name"] == "x"
    assert await names(api, CONFIGMAPS) == {"x"}


@pytest.mark.parametrize("simulations", [controllers.Simulations()])
async def test_deleting_a_deployment_deletes_its_replicasets_and_pods(api: httpx.AsyncClient,
                                                                      sandbox: runner.RunningSandbox) -> None:
    """A Deployment owns its ReplicaSets, which own their Pods: the cascade removes all of them.

    https://kubernetes.io/docs/concepts/architecture/garbage-collection/#cascading-deletion
    """
    await created(api, DEPLOYMENTS, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    await sandbox.controllers.settle()
    assert len(await names(api, REPLICASETS)) == 1 and len(await names(api, PODS)) == 2
    response = await api.delete(f"{DEPLOYMENTS}/web")
    assert response.status_code == 200
    await sandbox.controllers.settle()
    assert await names(api, REPLICASETS) == set() and await names(api, PODS) == set()


@pytest.mark.parametrize("simulations", [controllers.Simulations()])
async def test_a_job_deleted_through_the_api_without_a_policy_orphans_its_pods(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient, batch_v1: kubernetes.client.BatchV1Api) -> None:
    """batch/v1's default garbage-collection policy for Jobs is to orphan: a client that deletes a Job
    without propagationPolicy keeps its pods, and the server says so in a warning.

    https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup
    """
    job = {"metadata": {"name": "migrate", "annotations": {"sandbox.remediator.dev/outcome": "Failed"}},
           "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "m", "image": "busybox"}]}}}}
    await created(api, JOBS, job)
    await sandbox.controllers.settle()
    assert len(await names(api, PODS)) == 1
    response = await api.delete(f"{JOBS}/migrate")
    assert response.status_code == 200
    assert "child pods are preserved by default" in response.headers["Warning"]
    await sandbox.controllers.settle()
    pods = (await api.get(PODS)).json()["items"]
    assert len(pods) == 1 and "ownerReferences" not in pods[0]["metadata"]

    await created(api, JOBS, job)
    await sandbox.controllers.settle()
    body = kubernetes.client.V1DeleteOptions(propagation_policy="Background")
    await asyncio.to_thread(batch_v1.delete_namespaced_job, "migrate", "default", body=body)
    await sandbox.controllers.settle()
    assert len(await names(api, PODS)) == 1  # only the orphan of the first Job is left


async def test_deleting_a_namespace_deletes_its_objects_then_itself(api: httpx.AsyncClient) -> None:
    """A namespace being deleted is Terminating until everything in it is gone.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/#deleting-a-namespace
    """
    await api.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    await api.post("/api/v1/namespaces/team/configmaps", json={"metadata": {"name": "free"}})
    await api.post("/api/v1/namespaces/team/configmaps", json={"metadata": {"name": "held",
                                                                           "finalizers": ["x.io/hold"]}})
    await api.delete("/api/v1/namespaces/team")
    namespace = (await api.get("/api/v1/namespaces/team")).json()
    assert namespace["status"]["phase"] == "Terminating" and namespace["metadata"]["deletionTimestamp"]
    assert await names(api, "/api/v1/namespaces/team/configmaps") == {"held"}
    await api.patch("/api/v1/namespaces/team/configmaps/held", json={"metadata": {"finalizers": None}},
                    headers=MERGE)
    assert (await api.get("/api/v1/namespaces/team")).status_code == 404
