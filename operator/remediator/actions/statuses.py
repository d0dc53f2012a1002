"""Writing the status of remediator's own objects (the status subresource, merge patch)."""

from __future__ import annotations

from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import GROUP, VERSION, api_requests
from remediator.actions import retries


async def write_status(api: kubernetes.client.ApiClient, plural: str, namespace: str, name: str,
                       status: dict[str, Any], *, resource_version: str | None = None) -> dict[str, Any]:
    """Merge the status into the object's status subresource and return the object as stored.

    With `resource_version`, only if the object is still at that version (409 otherwise).
    Raises ApiException on failure.
    """
    patch: dict[str, Any] = {"status": status}
    if resource_version is not None:
        patch["metadata"] = {"resourceVersion": resource_version}
    return await retries.request_json(api, "PATCH", _path(plural, namespace, name, "status"), patch,
                                      content_type=api_requests.MERGE_PATCH)


async def write_incident_status(api: kubernetes.client.ApiClient, namespace: str, name: str,
                                status: dict[str, Any], *, resource_version: str | None = None) -> dict[str, Any]:
    """Merge the status into the Incident's status subresource; see write_status."""
    return await write_status(api, "incidents", namespace, name, status, resource_version=resource_version)


async def read_incident(api: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The Incident as stored now, or None when it is gone."""
    return await _read(api, "incidents", namespace, name)


async def read_runbook(api: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The Runbook as stored now, or None when there is none of that name."""
    return await _read(api, "runbooks", namespace, name)


async def _read(api: kubernetes.client.ApiClient, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await retries.request_json(api, "GET", _path(plural, namespace, name))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _path(plural: str, namespace: str, name: str, *subresource: str) -> str:
    return api_requests.path(f"/apis/{GROUP}/{VERSION}/namespaces", namespace, plural, name, *subresource)
