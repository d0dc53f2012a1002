"""Pod reads and restarts: deletion, or eviction where a PodDisruptionBudget covers the pod."""

from __future__ import annotations

from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.actions import retries
from remediator.engine import intents, pod_restarts


async def observe(api: kubernetes.client.ApiClient, namespace: str, intent: intents.ObservePods) -> intents.Result:
    """The matching pods as {name, uid, ready, terminating, labels}."""
    core = kubernetes.client.CoreV1Api(api)
    try:
        listed: Any = await retries.call(core.list_namespaced_pod, namespace, label_selector=intent.selector)
    except ApiException as e:
        return intents.failed("ApiError", f"could not list pods ({intent.selector}): API error {e.status}")
    pods = []
    for pod in listed.items:
        conditions = (pod.status.conditions if pod.status else None) or []
        pods.append({"name": pod.metadata.name, "uid": pod.metadata.uid, "labels": dict(pod.metadata.labels or {}),
                     "terminating": pod.metadata.deletion_timestamp is not None,
                     "ready": any(c.type == "Ready" and c.status == "True" for c in conditions)})
    return intents.done(pods)


async def restart(api: kubernetes.client.ApiClient, namespace: str, intent: intents.DeletePods) -> intents.Result:
    """Evict (PDB-covered) or delete each pod; a pod already gone is fine, a PDB refusal is reported, not failed."""
    core = kubernetes.client.CoreV1Api(api)
    policy = kubernetes.client.PolicyV1Api(api)
    try:
        budgets: Any = await retries.call(policy.list_namespaced_pod_disruption_budget, namespace)
    except ApiException as e:
        return intents.failed("ApiError", f"could not list PodDisruptionBudgets: API error {e.status}")
    outcome: dict[str, list[str]] = {"deleted": [], "evicted": [], "blocked": []}
    for name, labels in zip(intent.names, intent.labels, strict=True):
        covered = any(pod_restarts.selects(api.sanitize_for_serialization(b.spec.selector) or {},  # type: ignore[no-untyped-call]
                                           dict(labels)) for b in budgets.items if b.spec)
        try:
            if covered:
                eviction = kubernetes.client.V1Eviction(metadata=kubernetes.client.V1ObjectMeta(
                    name=name, namespace=namespace))
                # Not retried here: a 429 is the budget saying no, which the engine waits out.
                await retries.in_api_thread(core.create_namespaced_pod_eviction, name, namespace, eviction,
                                            _request_timeout=retries.REQUEST_TIMEOUT)
                outcome["evicted"].append(name)
            else:
                await retries.call(core.delete_namespaced_pod, name, namespace)
                outcome["deleted"].append(name)
        except ApiException as e:
            if e.status == 429:
                outcome["blocked"].append(name)
            elif e.status != 404:
                return intents.failed("ApiError", f"could not delete pod {name}: API error {e.status}")
    return intents.done(outcome)
