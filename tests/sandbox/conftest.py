"""Fixtures for the sandbox tests: the official kubernetes client, pointed at the sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import kubernetes.client
import pytest

from remediator.sandbox import runner


@pytest.fixture()
def kubernetes_client(sandbox: runner.RunningSandbox) -> Iterator[kubernetes.client.ApiClient]:
    """An ApiClient for the sandbox, as the official client's users build one."""
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=sandbox.url)) as client:
        # A kept-alive connection would hold up the server's shutdown by a second.
        client.set_default_header("Connection", "close")
        yield client


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
