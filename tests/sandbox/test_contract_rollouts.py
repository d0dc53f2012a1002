"""Rollouts pace themselves as kube-controller-manager paces them: a StatefulSet replaces one pod at a
time from the highest ordinal down, waiting for each to be Ready; a Deployment counts a pod available
only after minReadySeconds. Pods get ready at TIME_SCALE (their readiness probe's initial delay).
https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#rolling-updates
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from tests.conftest import simulated
from tests.scenarios.support import wait_for

PODS = "/api/v1/namespaces/default/pods"
STATEFULSETS = "/apis/apps/v1/namespaces/default/statefulsets"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
PROBE = {"httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 10, "periodSeconds": 5}


def workload(kind: str, name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, **spec,
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 5,
                         "containers": [{"name": "main", "image": "shop:1.0", "readinessProbe": PROBE}]}}}}


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", ()))


async def status_of(api: httpx.AsyncClient, path: str) -> dict[str, Any]:
    return dict((await api.get(path)).json().get("status") or {})


async def test_a_statefulset_rolls_one_pod_at_a_time_from_the_highest_ordinal_waiting_for_ready(
        api: httpx.AsyncClient) -> None:
    """A template change deletes db-2 first, recreates it, waits until it is Ready, then db-1, then db-0:
    never two pods of the set replaced at once (the OrderedReady RollingUpdate of the real controller)."""
    await api.post(STATEFULSETS, json=workload("StatefulSet", "db", 3, serviceName="db"))

    async def all_ready() -> bool:
        return (await status_of(api, f"{STATEFULSETS}/db")).get("readyReplicas") == 3
    await wait_for(all_ready, timeout=simulated(60))
    steps: list[tuple[str, str]] = []  # ("gone"/"ready", pod name) as a watch sees them
    ready: set[str] = set()
    params = {"watch": "true", "labelSelector": "app=db", "resourceVersion": (await api.get(PODS)).json()[
        "metadata"]["resourceVersion"]}
    async with api.stream("GET", PODS, params=params) as stream:
        patch = {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}
        await api.patch(f"{STATEFULSETS}/db", content=json.dumps(patch),
                        headers={"Content-Type": "application/merge-patch+json"})
        async with asyncio.timeout(simulated(3 * 20 + 3 * 5, 20)):
            async for line in stream.aiter_lines():
                event = json.loads(line)
                name = event["object"]["metadata"]["name"]
                if event["type"] == "DELETED":
                    steps.append(("gone", name))
                    ready.discard(name)
                elif is_ready(event["object"]) and not event["object"]["metadata"].get("deletionTimestamp") \
                        and name not in ready and any(step == ("gone", name) for step in steps):
                    ready.add(name)
                    steps.append(("ready", name))
                    if len(ready) == 3:
                        break

    assert steps == [("gone", "db-2"), ("ready", "db-2"), ("gone", "db-1"), ("ready", "db-1"),
                     ("gone", "db-0"), ("ready", "db-0")]
    status = await status_of(api, f"{STATEFULSETS}/db")
    assert status["currentRevision"] == status["updateRevision"] and status["updatedReplicas"] == 3


async def test_a_deployments_pods_count_as_available_only_after_min_ready_seconds(api: httpx.AsyncClient) -> None:
    """minReadySeconds 3: the pods are Ready, but availableReplicas stays 0 and Available False
    (MinimumReplicasUnavailable) until they have been ready that long; then both are available.
    minReadySeconds is not scaled (Ready's lastTransitionTime has whole seconds)."""
    await api.post(DEPLOYMENTS, json=workload("Deployment", "web", 2, minReadySeconds=3))
    loop = asyncio.get_running_loop()

    async def both_ready() -> dict[str, Any] | None:
        status = await status_of(api, f"{DEPLOYMENTS}/web")
        return status if status.get("readyReplicas") == 2 else None
    status = await wait_for(both_ready, timeout=simulated(30), interval=0.01)
    ready_at = loop.time()
    assert isinstance(status, dict) and not status.get("availableReplicas")
    available = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}["Available"]
    assert available == ("False", "MinimumReplicasUnavailable")

    async def both_available() -> dict[str, Any] | None:
        status = await status_of(api, f"{DEPLOYMENTS}/web")
        return status if status.get("availableReplicas") == 2 else None
    status = await wait_for(both_available, timeout=10)
    assert isinstance(status, dict) and loop.time() - ready_at >= 3 - 1 - 0.1, "3 s, less the second Ready rounds off"
    available = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}["Available"]
    assert available == ("True", "MinimumReplicasAvailable")
