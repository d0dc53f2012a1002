"""Workload reads and actions through the official kubernetes client's connection (run off the event loop).

Each action checks the world first and writes absolute values, so repeating it is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import api_requests
from remediator.actions import retries
from remediator.engine import guards, intents

# kind -> its resource (plural) in apps/v1; the subresource each request goes to, if any.
_WORKLOADS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
_SCALABLE = {"Deployment": "deployments", "StatefulSet": "statefulsets"}
RESTARTED_AT = intents.RESTARTED_AT_ANNOTATION
# (error, kind, name, namespace) -> Result: `failure` for Incidents; rollouts.failure raises on 5xx/429.
OnError = Callable[[ApiException, str, str, str], intents.Result]


def _path(table: dict[str, str], kind: str, name: str, namespace: str, *subresource: str) -> str:
    return api_requests.path("/apis/apps/v1/namespaces", namespace, table[kind], name, *subresource)


def failure(error: ApiException, kind: str, name: str, namespace: str) -> intents.Result:
    """An API error as a step failure whose message names the target, never the request body."""
    target = f"{kind.lower()}/{name}"
    if error.status == 404:
        return intents.failed("TargetNotFound", f"{target} not found in namespace {namespace}")
    if error.status == 403:
        return intents.failed("Forbidden", f"not allowed to change {target} in namespace {namespace}")
    if error.status == 409:
        return intents.failed("Conflict", f"{target} changed while it was being updated")
    return intents.failed("ApiError", f"API error {error.status} {error.reason} on {target}")


async def observe(api: kubernetes.client.ApiClient, namespace: str, intent: intents.ObserveTarget) -> intents.Result:
    """The workload as a plain dict (API field names), or why it cannot be read."""
    try:
        return intents.done(await retries.request_json(api, "GET", _path(_WORKLOADS, intent.kind, intent.name,
                                                                          namespace)))
    except ApiException as e:
        return failure(e, intent.kind, intent.name, namespace)


async def claim(api: kubernetes.client.ApiClient, namespace: str, intent: intents.ClaimTarget) -> intents.Result:
    """Write the lock and cooldown annotations on condition that the workload is still at the
    version the engine judged the lock on: of two concurrent claims, one fails with Conflict.

    Succeeds with the workload as the claim left it.
    """
    patch = {"metadata": {"resourceVersion": intent.resource_version or None, "annotations": {
        guards.LOCK_ANNOTATION: intent.holder,
        guards.cooldown_annotation(intent.cooldown_action): guards.format_cooldown(intent.cooldown_until,
                                                                                   intent.holder)}}}
    try:
        claimed = await retries.request_json(api, "PATCH", _path(_WORKLOADS, intent.kind, intent.name, namespace),
                                             patch, content_type=api_requests.STRATEGIC_MERGE_PATCH)
    except ApiException as e:
        return failure(e, intent.kind, intent.name, namespace)
    return intents.done(claimed)


def _lock_path() -> str:
    return "/metadata/annotations/" + guards.LOCK_ANNOTATION.replace("~", "~0").replace("/", "~1")


async def release(api: kubernetes.client.ApiClient, namespace: str, intent: intents.ReleaseTargets) -> intents.Result:
    """Remove this incident's lock from each target that still carries it; gone targets are fine.

    One JSON patch per target whose `test` makes it remove the lock only while it names this
    incident (a failed test is a 422: the lock is not ours, or no longer there).
    """
    patch = [{"op": "test", "path": _lock_path(), "value": intent.holder},
             {"op": "remove", "path": _lock_path()}]
    for kind, name in intent.targets:
        try:
            await retries.request_json(api, "PATCH", _path(_WORKLOADS, kind, name, namespace), patch,
                                       content_type=api_requests.JSON_PATCH)
        except ApiException as e:
            if e.status not in (404, 422):
                return failure(e, kind, name, namespace)
    return intents.done()


async def scale_to(api: kubernetes.client.ApiClient, namespace: str, intent: intents.ScaleTo,
                   on_error: OnError = failure) -> intents.Result:
    """Set replicas through the scale subresource (an absolute value: repeating it changes nothing).

    An API error (after retries.call's retries) is what `on_error(error, kind, name, namespace)` makes of it.
    """
    return await _patch(api, _path(_SCALABLE, intent.kind, intent.name, namespace, "scale"),
                        intent.kind, intent.name, namespace, {"spec": {"replicas": intent.replicas}}, on_error)


async def rollout_restart(api: kubernetes.client.ApiClient, namespace: str,
                          intent: intents.RolloutRestart) -> intents.Result:
    """Stamp the pod template's restartedAt annotation, exactly as `kubectl rollout restart` does (and
    remediator's own copy of it, which a KeyRotation reads to share a restart).

    The stamp is the time recorded in the step, so repeating the patch starts no second restart. With the
    intent's resourceVersion, only if the workload is still at it (Conflict otherwise).
    """
    stamps = {RESTARTED_AT: intent.restarted_at, intents.PRECISE_RESTART_ANNOTATION: intent.restarted_at}
    patch: dict[str, Any] = {"spec": {"template": {"metadata": {"annotations": stamps}}}}
    if intent.resource_version:
        patch["metadata"] = {"resourceVersion": intent.resource_version}
    return await _patch(api, _path(_WORKLOADS, intent.kind, intent.name, namespace), intent.kind, intent.name,
                        namespace, patch)


async def _patch(api: kubernetes.client.ApiClient, api_path: str, kind: str, name: str, namespace: str,
                 patch: dict[str, Any], on_error: OnError = failure) -> intents.Result:
    try:
        await retries.request_json(api, "PATCH", api_path, patch, content_type=api_requests.STRATEGIC_MERGE_PATCH)
    except ApiException as e:
        return on_error(e, kind, name, namespace)
    return intents.done()
