"""Fixtures for the sandbox tests: the official client's API classes, pointed at the sandbox."""

from __future__ import annotations

import kubernetes.client
import pytest


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
