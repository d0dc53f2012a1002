"""Helpers for the sandbox contract tests: the paths they talk to, bodies they send, and a checked create."""

from __future__ import annotations

import datetime
from typing import Any

import httpx

from remediator.sandbox import controllers

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"
MERGE = {"Content-Type": "application/merge-patch+json"}

class Clock:
    """A store clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


# Only the API server: no controller writes between the test's own writes.
NO_CONTROLLERS = controllers.Simulations(deployments=False, replicasets=False, pods=False, statefulsets=False,
                                         daemonsets=False, jobs=False, events=False, serviceaccounts=False,
                                         disruption=False, endpoints=False)


async def created(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to `path` and return the stored object; fails the test unless the answer is 201 Created."""
    response = await api.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def incident(name: str = "i", *, finalizers: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    """An Incident body (severity P2, "db down") with `spec` fields added or overridden."""
    metadata: dict[str, Any] = {"name": name}
    if finalizers is not None:
        metadata["finalizers"] = finalizers
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": metadata,
            "spec": {"severity": "P2", "summary": "db down", **spec}}


def template(**spec: Any) -> dict[str, Any]:
    """A pod template labelled app=shop with one container `app` (shop:1.0), with `spec` fields added."""
    return {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": [{"name": "app", "image": "shop:1.0"}],
                                                              **spec}}
