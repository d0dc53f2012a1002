"""Workload reads and actions through the official kubernetes client (run off the event loop).

Each action checks the world first and writes absolute values, so repeating it is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import faults
from remediator.actions import retries
from remediator.engine import guards, intents

_READERS = {
    "Deployment": "read_namespaced_deployment",
    "StatefulSet": "read_namespaced_stateful_set",
    "DaemonSet": "read_namespaced_daemon_set",
}
_PATCHERS = {
    "Deployment": "patch_namespaced_deployment",
    "StatefulSet": "patch_namespaced_stateful_set",
    "DaemonSet": "patch_namespaced_daemon_set",
}
_SCALE_READERS = {
    "Deployment": "read_namespaced_deployment_scale",
    "StatefulSet": "read_namespaced_stateful_set_scale",
}
_SCALE_WRITERS = {
    "Deployment": "replace_namespaced_deployment_scale",
    "StatefulSet": "replace_namespaced_stateful_set_scale",
}
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _method(api: kubernetes.client.ApiClient, table: dict[str, str], kind: str) -> Callable[..., Any]:
    method: Callable[..., Any] = getattr(kubernetes.client.AppsV1Api(api), table[kind])
    return method


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
        obj = await retries.call(_method(api, _READERS, intent.kind), intent.name, namespace)
    except ApiException as e:
        return failure(e, intent.kind, intent.name, namespace)
    return intents.done(api.sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]


async def claim(api: kubernetes.client.ApiClient, namespace: str, intent: intents.ClaimTarget) -> intents.Result:
    """Write the lock and cooldown annotations, conditional on the lock still being free or ours.

    Reads first and writes with that resourceVersion: a concurrent claim makes this one fail
    with Conflict, and the engine looks again.
    """
    try:
        obj: Any = await retries.call(_method(api, _READERS, intent.kind), intent.name, namespace)
        annotations = obj.metadata.annotations or {}
        if annotations.get(guards.LOCK_ANNOTATION) not in (None, "", intent.holder):
            return intents.failed("Conflict", f"{intent.kind.lower()}/{intent.name} was claimed by "
                                  f"{annotations[guards.LOCK_ANNOTATION]}")
        patch = {"metadata": {"resourceVersion": obj.metadata.resource_version, "annotations": {
            guards.LOCK_ANNOTATION: intent.holder,
            guards.cooldown_annotation(intent.cooldown_action): guards.format_cooldown(intent.cooldown_until,
                                                                                       intent.holder)}}}
        await retries.call(_method(api, _PATCHERS, intent.kind), intent.name, namespace, patch)
    except ApiException as e:
        return failure(e, intent.kind, intent.name, namespace)
    return intents.done()


async def release(api: kubernetes.client.ApiClient, namespace: str, intent: intents.ReleaseTargets) -> intents.Result:
    """Remove this incident's lock from each target that still carries it; gone targets are fine."""
    for kind, name in intent.targets:
        for _ in range(5):
            try:
                obj: Any = await retries.call(_method(api, _READERS, kind), name, namespace)
                if (obj.metadata.annotations or {}).get(guards.LOCK_ANNOTATION) != intent.holder:
                    break
                patch = {"metadata": {"resourceVersion": obj.metadata.resource_version,
                                      "annotations": {guards.LOCK_ANNOTATION: None}}}
                await retries.call(_method(api, _PATCHERS, kind), name, namespace, patch)
                break
            except ApiException as e:
                if e.status == 404:
                    break
                if e.status != 409:
                    return failure(e, kind, name, namespace)
    return intents.done()


async def scale_to(api: kubernetes.client.ApiClient, namespace: str, intent: intents.ScaleTo) -> intents.Result:
    """Set replicas through the scale subresource; nothing is written when they already match."""
    reader, writer = _method(api, _SCALE_READERS, intent.kind), _method(api, _SCALE_WRITERS, intent.kind)
    for _ in range(5):
        try:
            scale: Any = await retries.call(reader, intent.name, namespace)
            if scale.spec.replicas == intent.replicas:
                return intents.done()
            scale.spec.replicas = intent.replicas
            faults.crash_point("scale-after-read")
            await retries.call(writer, intent.name, namespace, scale)
            return intents.done()
        except ApiException as e:
            if e.status != 409:
                return failure(e, intent.kind, intent.name, namespace)
    return intents.failed("Conflict", f"{intent.kind.lower()}/{intent.name} kept changing")


async def rollout_restart(api: kubernetes.client.ApiClient, namespace: str,
                          intent: intents.RolloutRestart) -> intents.Result:
    """Stamp the pod template's restartedAt annotation, exactly as `kubectl rollout restart` does.

    The stamp is the time recorded in the step, so repeating the patch starts no second restart.
    """
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: intent.restarted_at}}}}}
    try:
        await retries.call(_method(api, _PATCHERS, intent.kind), intent.name, namespace, patch)
    except ApiException as e:
        return failure(e, intent.kind, intent.name, namespace)
    return intents.done()
