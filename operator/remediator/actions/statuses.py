"""Writing the status of remediator's own objects (the status subresource, merge patch)."""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes.client

from remediator import GROUP, VERSION


async def write_incident_status(api: kubernetes.client.ApiClient, namespace: str, name: str,
                                status: dict[str, Any]) -> None:
    """Merge the status into the Incident's status subresource. Raises ApiException on failure."""
    custom = kubernetes.client.CustomObjectsApi(api)
    await asyncio.to_thread(custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace,
                            "incidents", name, {"status": status})
