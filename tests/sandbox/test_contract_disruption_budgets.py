"""Contract: PodDisruptionBudgets — the disruption controller's status, and the Eviction API that uses it.

https://kubernetes.io/docs/tasks/run-application/configure-pdb/
https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from remediator.sandbox import runner
from remediator.sandbox.controllers import disruption

from .support import DEPLOYMENTS, PODS, created

PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"


def deployment(replicas: int, **pod_spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], **pod_spec}}}}


def budget(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


async def status_of(api: httpx.AsyncClient, sandbox: runner.RunningSandbox, name: str = "web") -> dict[str, Any]:
    await sandbox.controllers.settle()
    status: dict[str, Any] = (await api.get(f"{PDBS}/{name}")).json()["status"]
    return status


async def evict(api: httpx.AsyncClient, pod: str) -> httpx.Response:
    return await api.post(f"{PODS}/{pod}/eviction", json={
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod}})


async def pod_names(api: httpx.AsyncClient, *, terminating: bool = False) -> list[str]:
    items = (await api.get(PODS)).json()["items"]
    return sorted(p["metadata"]["name"] for p in items if bool(p["metadata"].get("deletionTimestamp")) == terminating)


@pytest.mark.parametrize(("spec", "expected", "desired", "allowed"), [
    ({"minAvailable": 3}, 4, 3, 1),
    ({"minAvailable": "50%"}, 4, 2, 2),
    ({"minAvailable": "60%"}, 4, 3, 1),  # 2.4 rounds up
    ({"maxUnavailable": 1}, 4, 3, 1),
    ({"maxUnavailable": "30%"}, 4, 2, 2),  # 1.2 unavailable rounds up to 2
    ({"minAvailable": 5}, 4, 5, 0),
], ids=["min-int", "min-50%", "min-60%", "max-int", "max-30%", "min-above-pods"])
async def test_the_disruption_controller_computes_the_budget_status(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox, spec: dict[str, Any], expected: int,
        desired: int, allowed: int) -> None:
    """currentHealthy, desiredHealthy, expectedPods and disruptionsAllowed for minAvailable and
    maxUnavailable, integer and percentage (percentages of the Deployment's scale, rounded up), with
    observedGeneration and the DisruptionAllowed condition.

    https://kubernetes.io/docs/tasks/run-application/configure-pdb/#rounding-logic-when-specifying-percentages
    """
    await created(api, DEPLOYMENTS, deployment(4))
    await created(api, PDBS, budget(**spec))
    status = await status_of(api, sandbox)
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"],
            status["disruptionsAllowed"]) == (4, desired, expected, allowed)
    assert status["observedGeneration"] == 1
    [condition] = status["conditions"]
    assert condition["type"] == "DisruptionAllowed" and condition["observedGeneration"] == 1
    assert (condition["status"], condition["reason"]) == (
        ("True", "SufficientPods") if allowed else ("False", "InsufficientPods"))


async def test_an_eviction_uses_up_a_disruption_and_the_next_one_is_refused_with_429(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """With minAvailable 1 of 2 pods, the first eviction succeeds: disruptionsAllowed drops to 0, the
    pod is in disruptedPods and terminates gracefully. The second answers 429 with kube-apiserver's
    message until the replacement is Ready; then it succeeds.

    https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/#how-api-initiated-eviction-works
    """
    await created(api, DEPLOYMENTS, deployment(2, terminationGracePeriodSeconds=300))
    await created(api, PDBS, budget(minAvailable=1))
    assert (await status_of(api, sandbox))["disruptionsAllowed"] == 1
    first, second = await pod_names(api)

    # Hold the replacement back: the controllers pause (a real replacement takes time to get Ready).
    await sandbox.controllers.stop()
    accepted = await evict(api, first)
    assert accepted.status_code == 201 and accepted.json()["status"] == "Success"
    after = (await api.get(f"{PDBS}/web")).json()["status"]
    assert after["disruptionsAllowed"] == 0 and list(after["disruptedPods"]) == [first]
    assert [c["status"] for c in after["conditions"]] == ["False"]
    assert await pod_names(api, terminating=True) == [first]
    # The disruption controller alone sees the pod terminating: 1 healthy pod left, none to spare.
    disruption.reconcile(sandbox.controllers.cluster, "default", "web")

    refused = await evict(api, second)
    assert refused.status_code == 429
    body = refused.json()
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget",
                                          "message": "The disruption budget web needs 1 healthy pods and has 1 "
                                                     "currently"}]
    assert second in await pod_names(api)

    sandbox.controllers.start()  # the replacement runs and becomes Ready
    for _ in range(300):
        if (await api.get(f"{PDBS}/web")).json()["status"]["disruptionsAllowed"] == 1:
            break
        await asyncio.sleep(0.01)
    assert (await evict(api, second)).status_code == 201


async def test_an_eviction_without_a_budget_deletes_gracefully_and_two_budgets_are_an_error(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """A pod no budget covers is evicted at once; one that two budgets cover cannot be evicted (500).

    https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/#troubleshooting-stuck-evictions
    """
    await created(api, DEPLOYMENTS, deployment(2))
    await sandbox.controllers.settle()
    first, second = await pod_names(api)
    assert (await evict(api, first)).status_code == 201
    await created(api, PDBS, budget("one", maxUnavailable=1))
    await created(api, PDBS, budget("two", maxUnavailable=1))
    await sandbox.controllers.settle()
    refused = await evict(api, second)
    assert refused.status_code == 500
    assert refused.json()["message"] == ("This pod has more than one PodDisruptionBudget, which the eviction "
                                         "subresource does not support.")


async def test_a_budget_not_yet_processed_refuses_evictions(api: httpx.AsyncClient,
                                                           sandbox: runner.RunningSandbox) -> None:
    """Until the disruption controller has observed the budget's generation, evictions get 429
    "is still being processed by the server".

    https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/#how-api-initiated-eviction-works
    """
    await created(api, DEPLOYMENTS, deployment(2))
    await sandbox.controllers.settle()
    await sandbox.controllers.stop()
    await created(api, PDBS, budget(maxUnavailable=1))
    first, _ = await pod_names(api)
    refused = await evict(api, first)
    assert refused.status_code == 429
    assert refused.json()["details"]["causes"][0]["message"] == (
        "The disruption budget web is still being processed by the server.")
    assert refused.json()["details"]["retryAfterSeconds"] == 10
