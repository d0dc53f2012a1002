"""Creating and reading the RollbackRequests that rollback steps delegate to."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client

from remediator.actions import owned_objects
from remediator.engine import intents

PLURAL = "rollbackrequests"


async def ensure(api: kubernetes.client.ApiClient, owner: Mapping[str, Any],
                 intent: intents.EnsureRollbackRequest) -> intents.Result:
    """Create the RollbackRequest owned by the Incident; an existing one with that name is kept."""
    return await owned_objects.create(api, owner, "RollbackRequest", PLURAL, intent.name, json.loads(intent.spec_json))


async def observe(api: kubernetes.client.ApiClient, namespace: str,
                  intent: intents.ObserveRollbackRequest) -> intents.Result:
    return await owned_objects.read(api, namespace, "RollbackRequest", PLURAL, intent.name, (
        "RollbackRequestGone", f"RollbackRequest {intent.name} no longer exists"))
