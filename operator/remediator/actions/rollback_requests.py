"""Creating and reading the RollbackRequests that rollback steps delegate to."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import API_VERSION, GROUP, VERSION
from remediator.actions import retries
from remediator.engine import intents

PLURAL = "rollbackrequests"


async def ensure(api: kubernetes.client.ApiClient, owner: Mapping[str, Any],
                 intent: intents.EnsureRollbackRequest) -> intents.Result:
    """Create the RollbackRequest owned by the Incident; an existing one with that name is kept."""
    meta = owner["metadata"]
    body = {
        "apiVersion": API_VERSION, "kind": "RollbackRequest",
        "metadata": {"name": intent.name, "namespace": meta["namespace"],
                     "labels": {f"{GROUP}/incident": meta["name"]},
                     "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Incident", "name": meta["name"],
                                          "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
        "spec": json.loads(intent.spec_json),
    }
    custom = kubernetes.client.CustomObjectsApi(api)
    try:
        await retries.call(custom.create_namespaced_custom_object, GROUP, VERSION, meta["namespace"], PLURAL,
                           body)
    except ApiException as e:
        if e.status != 409:
            return intents.failed("ApiError", f"could not create RollbackRequest {intent.name}: API error {e.status}")
    return intents.done()


async def observe(api: kubernetes.client.ApiClient, namespace: str,
                  intent: intents.ObserveRollbackRequest) -> intents.Result:
    custom = kubernetes.client.CustomObjectsApi(api)
    try:
        obj = await retries.call(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                 intent.name)
    except ApiException as e:
        if e.status == 404:
            return intents.failed("RollbackRequestGone", f"RollbackRequest {intent.name} no longer exists")
        return intents.failed("ApiError", f"could not read RollbackRequest {intent.name}: API error {e.status}")
    return intents.done(obj)
