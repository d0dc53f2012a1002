"""Contract: graceful deletion of pods — Terminating for the grace period, then gone.

https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.conftest import TIME_SCALE
from tests.sandbox.test_kubectl import Kubectl

from remediator.sandbox import runner

from .support import NO_CONTROLLERS, PODS, created

REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], **spec}}


async def running_pod(api: httpx.AsyncClient, sandbox: runner.RunningSandbox, name: str, **spec: Any
                      ) -> dict[str, Any]:
    await created(api, PODS, pod(name, **spec))
    await sandbox.controllers.settle()
    started: dict[str, Any] = (await api.get(f"{PODS}/{name}")).json()
    assert started["status"]["phase"] == "Running"
    return started


def stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


async def gone(api: httpx.AsyncClient, path: str, within: float, since: float | None = None) -> float:
    """Seconds until `path` answers 404 (counted from `since`, the loop time the deletion was asked at,
    when given: a lower bound on the grace period then holds however slowly the answer came back),
    failing after `within` seconds."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (await api.get(path)).status_code != 404:
        assert loop.time() - start < within, f"{path} still there after {within}s"
        await asyncio.sleep(0.01)
    return loop.time() - (start if since is None else since)


async def watched(lines: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    received = []
    async with asyncio.timeout(5):
        async for line in lines:
            received.append(json.loads(line))
            if len(received) == count:
                break
    return received


async def test_a_deleted_running_pod_is_terminating_for_its_grace_period_and_watches_see_it_go(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """DELETE answers with the pod, now carrying deletionTimestamp (now + 30 s, the default
    terminationGracePeriodSeconds) and deletionGracePeriodSeconds; it stays readable while its
    kubelet stops it, then is removed: watches see MODIFIED, then DELETED.

    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
    """
    started = await running_pod(api, sandbox, "web")
    rv = started["metadata"]["resourceVersion"]
    async with api.stream("GET", PODS, params={"watch": "true", "resourceVersion": rv}) as stream:
        lines = stream.aiter_lines()
        before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        asked = asyncio.get_running_loop().time()
        response = await api.delete(f"{PODS}/web")
        assert response.status_code == 200
        marked = response.json()
        assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
        deadline = stamp(marked["metadata"]["deletionTimestamp"]) - before
        assert datetime.timedelta(seconds=29) <= deadline <= datetime.timedelta(seconds=32)
        assert (await api.get(f"{PODS}/web")).json()["metadata"]["deletionTimestamp"]
        took = await gone(api, f"{PODS}/web", within=30 * TIME_SCALE + 5, since=asked)
        received = await watched(lines, 2)
    assert [e["type"] for e in received] == ["MODIFIED", "DELETED"]
    assert received[0]["object"]["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    # The grace period passed, scaled by the sandbox's time scale.
    assert took >= 30 * TIME_SCALE * 0.8


async def test_the_grace_period_comes_from_the_pod_spec_or_the_request(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """deletionGracePeriodSeconds is the pod's terminationGracePeriodSeconds unless the DELETE gives
    gracePeriodSeconds; 0 deletes at once. A later DELETE may shorten the period, never lengthen it.

    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#termination-with-grace-period
    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination-forced
    """
    await running_pod(api, sandbox, "slow", terminationGracePeriodSeconds=600)
    await running_pod(api, sandbox, "quick")
    await running_pod(api, sandbox, "now")
    slow = (await api.delete(f"{PODS}/slow")).json()
    assert slow["metadata"]["deletionGracePeriodSeconds"] == 600
    longer = (await api.delete(f"{PODS}/slow", params={"gracePeriodSeconds": "900"})).json()
    assert longer["metadata"]["deletionGracePeriodSeconds"] == 600
    shorter = (await api.request("DELETE", f"{PODS}/slow", json={"gracePeriodSeconds": 1})).json()
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 1
    assert stamp(shorter["metadata"]["deletionTimestamp"]) < stamp(slow["metadata"]["deletionTimestamp"])
    quick = (await api.delete(f"{PODS}/quick", params={"gracePeriodSeconds": "2"})).json()
    assert quick["metadata"]["deletionGracePeriodSeconds"] == 2
    response = await api.delete(f"{PODS}/now", params={"gracePeriodSeconds": "0"})
    assert response.status_code == 200 and "deletionTimestamp" not in response.json()["metadata"]
    assert (await api.get(f"{PODS}/now")).status_code == 404
    await gone(api, f"{PODS}/quick", within=2 * TIME_SCALE + 5)
    await gone(api, f"{PODS}/slow", within=1 * TIME_SCALE + 5)


@pytest.mark.parametrize("simulations", [NO_CONTROLLERS])
async def test_a_pod_no_node_runs_is_deleted_at_once(api: httpx.AsyncClient) -> None:
    """An unscheduled pod has nothing to stop: its DELETE removes it (grace period 0).

    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
    """
    await created(api, PODS, pod("pending"))
    response = await api.delete(f"{PODS}/pending")
    assert response.status_code == 200 and "deletionTimestamp" not in response.json()["metadata"]
    assert (await api.get(f"{PODS}/pending")).status_code == 404


async def test_an_evicted_pod_terminates_gracefully(api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """The Eviction API deletes the pod as a DELETE does, gracefully, with the Eviction's deleteOptions.

    https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/#how-api-initiated-eviction-works
    """
    await running_pod(api, sandbox, "evicted")
    response = await api.post(f"{PODS}/evicted/eviction", json={
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "evicted"},
        "deleteOptions": {"gracePeriodSeconds": 20}})
    assert response.status_code == 201
    terminating = (await api.get(f"{PODS}/evicted")).json()
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 20
    await gone(api, f"{PODS}/evicted", within=20 * TIME_SCALE + 5)


async def test_a_replicaset_replaces_a_terminating_pod_at_once(api: httpx.AsyncClient,
                                                               sandbox: runner.RunningSandbox) -> None:
    """A terminating pod no longer counts for its ReplicaSet, which creates the replacement while the
    old pod is still Terminating (and Killing its containers).

    https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#how-a-replicaset-works
    """
    await created(api, REPLICASETS, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"terminationGracePeriodSeconds": 300,
                                       "containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    await sandbox.controllers.settle()
    first, _ = sorted(p["metadata"]["name"] for p in (await api.get(PODS)).json()["items"])
    await api.delete(f"{PODS}/{first}")
    for _ in range(200):
        items = (await api.get(PODS)).json()["items"]
        if len(items) == 3:
            break
        await asyncio.sleep(0.01)
    terminating = [p["metadata"]["name"] for p in items if p["metadata"].get("deletionTimestamp")]
    assert len(items) == 3 and terminating == [first]
    killing = (await api.get("/api/v1/namespaces/default/events",
                             params={"fieldSelector": f"involvedObject.name={first}"})).json()["items"]
    assert [e["message"] for e in killing if e["reason"] == "Killing"] == ["Stopping container web"]
    assert (await api.get(f"{REPLICASETS}/web")).json()["status"]["replicas"] == 2
    await sandbox.controllers.settle(timeout=300 * TIME_SCALE + 5)
    assert len((await api.get(PODS)).json()["items"]) == 2


async def test_kubectl_get_pods_shows_a_deleted_pod_terminating(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox, kubeconfig: pathlib.Path,
        tmp_path: pathlib.Path) -> None:
    """`kubectl get pods` prints STATUS Terminating for a pod with a deletionTimestamp.

    https://kubernetes.io/docs/reference/kubectl/generated/kubectl_delete/
    """
    await running_pod(api, sandbox, "web", terminationGracePeriodSeconds=600)
    kubectl = Kubectl(kubeconfig, tmp_path)
    await kubectl("delete", "pod", "web", "--wait=false")
    listed = await kubectl("get", "pods", "web", "--no-headers")
    assert listed.stdout.split()[2] == "Terminating"
    await kubectl("delete", "pod", "web", "--grace-period=0", "--force")
    assert (await api.get(f"{PODS}/web")).status_code == 404



async def test_foreground_deletion_holds_the_deployment_until_its_pods_have_terminated(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """Foreground cascading deletion: the Deployment (and its ReplicaSet) keep the `foregroundDeletion`
    finalizer while their pods take their grace period (100 s, scaled), and go only after the pods.

    https://kubernetes.io/docs/concepts/architecture/garbage-collection/#foreground-deletion
    """
    deployments = "/apis/apps/v1/namespaces/default/deployments"
    await created(api, deployments, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {**pod("x")["spec"], "terminationGracePeriodSeconds": 100}}}})
    await sandbox.controllers.settle()
    loop = asyncio.get_running_loop()
    start = loop.time()
    response = await api.delete(f"{deployments}/web", params={"propagationPolicy": "Foreground"})
    assert response.status_code == 200
    held = (await api.get(f"{deployments}/web")).json()["metadata"]
    assert held["finalizers"] == ["foregroundDeletion"] and held["deletionTimestamp"]

    while True:
        # The Deployment first: if it is gone, the pods read after it must be gone too.
        deployment_found = (await api.get(f"{deployments}/web")).status_code == 200
        pods_left = (await api.get(PODS)).json()["items"]
        assert deployment_found or not pods_left, "the Deployment went before its pods"
        if not pods_left:
            break
        assert loop.time() - start < 100 * TIME_SCALE + 5
        await asyncio.sleep(0.01)
    pods_took = loop.time() - start
    assert pods_took >= 100 * TIME_SCALE * 0.8
    await gone(api, f"{deployments}/web", within=5)
    assert (await api.get(REPLICASETS)).json()["items"] == []


async def test_a_container_that_stops_on_sigterm_ends_the_grace_period_early(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """The pod is Terminating until its containers have exited: an image that stops 2 s after SIGTERM
    (tests/images.yaml) is gone long before its 3000 s grace period ends; the kubelet still records
    Killing."""
    started = await created(api, PODS, {"metadata": {"name": "polite"}, "spec": {
        "terminationGracePeriodSeconds": 3000, "containers": [{"name": "web", "image": "web:quick-stop"}]}})
    await sandbox.controllers.settle()
    assert (await api.get(f"{PODS}/polite")).json()["status"]["phase"] == "Running"
    asked = asyncio.get_running_loop().time()
    assert (await api.delete(f"{PODS}/polite")).json()["metadata"]["deletionGracePeriodSeconds"] == 3000

    took = await gone(api, f"{PODS}/polite", within=3000 * TIME_SCALE / 3, since=asked)
    assert took >= 2 * TIME_SCALE * 0.8
    events = (await api.get("/api/v1/namespaces/default/events",
                            params={"fieldSelector": f"involvedObject.uid={started['metadata']['uid']}"})).json()
    assert [e["message"] for e in events["items"] if e["reason"] == "Killing"] == ["Stopping container web"]
