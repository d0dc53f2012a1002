"""Reading and writing the leader-election Lease (coordination.k8s.io/v1) with the async client.

The async client (kubernetes.aio) keeps renewals off the worker threads the actions use, so a
busy operator never delays its own renewal. Every write is conditional on the resourceVersion
read: of two candidates writing the same Lease, one gets 409 and stays a follower.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException

from remediator.engine import leases


@dataclasses.dataclass(frozen=True)
class FoundLease:
    """The Lease as read: its record, and the version a write must be conditional on."""

    record: leases.LeaseRecord
    resource_version: str


async def read(api: client.ApiClient, namespace: str, name: str, timeout: float) -> FoundLease | None:
    """The Lease, or None when there is none. Raises ApiException (or a connection error) otherwise."""
    coordination = client.CoordinationV1Api(api)
    try:
        lease: Any = await coordination.read_namespaced_lease(name, namespace, _request_timeout=timeout)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    spec = lease.spec or client.V1LeaseSpec()
    record = leases.LeaseRecord(holder=spec.holder_identity or "", duration_seconds=spec.lease_duration_seconds or 0,
                                acquired_at=spec.acquire_time, renewed_at=spec.renew_time,
                                transitions=spec.lease_transitions or 0)
    return FoundLease(record, str(lease.metadata.resource_version))


async def write(api: client.ApiClient, namespace: str, name: str, record: leases.LeaseRecord,
                resource_version: str | None, timeout: float) -> bool:
    """Create the Lease (no version) or replace the one read at `resource_version`.

    Returns False when another candidate wrote first (409) or created it first; raises other
    failures (ApiException, connection errors).
    """
    coordination = client.CoordinationV1Api(api)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, resource_version=resource_version),
        spec=client.V1LeaseSpec(holder_identity=record.holder, lease_duration_seconds=record.duration_seconds,
                                acquire_time=record.acquired_at, renew_time=record.renewed_at,
                                lease_transitions=record.transitions))
    try:
        if resource_version is None:
            await coordination.create_namespaced_lease(namespace, body, _request_timeout=timeout)
        else:
            await coordination.replace_namespaced_lease(name, namespace, body, _request_timeout=timeout)
    except ApiException as e:
        if e.status == 409:
            return False
        raise
    return True
