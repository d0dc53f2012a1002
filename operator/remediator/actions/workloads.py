"""Workload reads and actions through the official kubernetes client (run off the event loop)."""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.api.targets import ScalableTarget
from remediator.engine import intents

_SCALE_READERS = {
    "Deployment": "read_namespaced_deployment_scale",
    "StatefulSet": "read_namespaced_stateful_set_scale",
}
_SCALE_WRITERS = {
    "Deployment": "replace_namespaced_deployment_scale",
    "StatefulSet": "replace_namespaced_stateful_set_scale",
}


async def observe_replicas(api: kubernetes.client.ApiClient, namespace: str,
                           target: ScalableTarget) -> intents.Observed:
    """The target's desired replicas, or why they cannot be read (TargetNotFound, ApiError)."""
    apps = kubernetes.client.AppsV1Api(api)
    try:
        scale: Any = await asyncio.to_thread(getattr(apps, _SCALE_READERS[target.kind]), target.name, namespace)
    except ApiException as e:
        return _failed_read(e, namespace, target)
    return intents.Observed(value=int(scale.spec.replicas or 0))


async def scale_to(api: kubernetes.client.ApiClient, namespace: str, action: intents.ScaleTo) -> intents.Outcome:
    """Set the target's replicas to an absolute number through the scale subresource.

    Checks first: when the replicas already are the wanted number, nothing is written.
    The write carries the read resourceVersion, so a concurrent change yields a 409 and a retry.
    """
    apps = kubernetes.client.AppsV1Api(api)
    reader = getattr(apps, _SCALE_READERS[action.target.kind])
    writer = getattr(apps, _SCALE_WRITERS[action.target.kind])
    for _ in range(5):
        try:
            scale: Any = await asyncio.to_thread(reader, action.target.name, namespace)
            if scale.spec.replicas == action.replicas:
                return intents.Outcome(succeeded=True)
            scale.spec.replicas = action.replicas
            await asyncio.to_thread(writer, action.target.name, namespace, scale)
            return intents.Outcome(succeeded=True)
        except ApiException as e:
            if e.status == 409:
                continue
            observed = _failed_read(e, namespace, action.target)
            return intents.Outcome(succeeded=False, reason=observed.reason or "ApiError",
                                   message=observed.message)
    return intents.Outcome(succeeded=False, reason="Conflict",
                           message=f"{action.target.kind.lower()}/{action.target.name} kept changing")


def _failed_read(error: ApiException, namespace: str, target: ScalableTarget) -> intents.Observed:
    if error.status == 404:
        return intents.Observed(reason="TargetNotFound",
                                message=f"{target.kind.lower()}/{target.name} not found in namespace {namespace}")
    if error.status == 403:
        return intents.Observed(reason="Forbidden",
                                message=f"not allowed to access {target.kind.lower()}/{target.name}")
    return intents.Observed(reason="ApiError", message=f"API error {error.status} {error.reason}")
