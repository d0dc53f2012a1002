"""What an Incident's rotateKey step does to KeyRotations: create an inline one, ask for a rotation, read one.

The KeyRotation controller does the rotating; these only write the request (an annotation, so GitOps
tools that own the spec see no drift) and read back how it goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import GROUP, VERSION
from remediator.actions import owned_objects, retries
from remediator.api.keyrotations import EMERGENCY_ANNOTATION, ROTATE_ANNOTATION
from remediator.engine import intents

PLURAL = "keyrotations"


def _request_annotations(request_id: str, emergency: bool) -> dict[str, str]:
    # Both, always: an emergency flag left by an earlier request must not carry over to this one.
    return {ROTATE_ANNOTATION: request_id, EMERGENCY_ANNOTATION: "true" if emergency else "false"}


async def ensure(api: kubernetes.client.ApiClient, owner: Mapping[str, Any],
                 intent: intents.EnsureKeyRotation) -> intents.Result:
    """Create the inline KeyRotation owned by the Incident, with its request on it; an existing one is kept."""
    return await owned_objects.create(api, owner, "KeyRotation", PLURAL, intent.name, json.loads(intent.spec_json),
                                      _request_annotations(intent.request_id, intent.emergency))


async def request(api: kubernetes.client.ApiClient, namespace: str,
                  intent: intents.RequestRotation) -> intents.Result:
    """Write the rotation request, on condition that the KeyRotation is still as the step read it.

    A conflict is no failure: the step reads again and decides whether its request is still needed.
    """
    patch: dict[str, Any] = {"metadata": {"annotations": _request_annotations(intent.request_id, intent.emergency)}}
    if intent.resource_version:
        patch["metadata"]["resourceVersion"] = intent.resource_version
    custom = kubernetes.client.CustomObjectsApi(api)
    try:
        await retries.call(custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, intent.name,
                           patch)
    except ApiException as e:
        if e.status == 409:
            return intents.done({"written": False})
        if e.status == 404:
            return intents.failed("KeyRotationNotFound", f"KeyRotation {intent.name} does not exist")
        return intents.failed("ApiError", f"could not ask KeyRotation {intent.name} to rotate: API error {e.status}")
    return intents.done({"written": True})


async def observe(api: kubernetes.client.ApiClient, namespace: str,
                  intent: intents.ObserveKeyRotation) -> intents.Result:
    return await owned_objects.read(api, namespace, "KeyRotation", PLURAL, intent.name, (
        "KeyRotationNotFound", f"KeyRotation {intent.name} does not exist"))
