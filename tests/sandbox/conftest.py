"""Fixtures for the sandbox tests: the official client's API classes, pointed at the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import kubernetes.client
import pytest

from remediator.sandbox import runner

from .auth_support import as_token
from .support import NO_CONTROLLERS


@pytest.fixture()
def core_v1(kubernetes_client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kubernetes_client)


@pytest.fixture()
def apps_v1(kubernetes_client: kubernetes.client.ApiClient) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(kubernetes_client)


@pytest.fixture()
def batch_v1(kubernetes_client: kubernetes.client.ApiClient) -> kubernetes.client.BatchV1Api:
    return kubernetes.client.BatchV1Api(kubernetes_client)


@pytest.fixture()
def custom_objects(kubernetes_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kubernetes_client)


@pytest.fixture()
async def secured() -> AsyncIterator[runner.RunningSandbox]:
    """A sandbox with authentication and RBAC on (`--auth`), and no workload controllers."""
    async with runner.running(simulations=NO_CONTROLLERS, auth=True) as running:
        yield running


@pytest.fixture()
async def admin(secured: runner.RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the secured sandbox with the admin's token (the one in its kubeconfig)."""
    async with as_token(secured, secured.admin_token) as client:
        yield client
