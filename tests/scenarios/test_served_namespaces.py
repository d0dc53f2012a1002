"""`remediator run --namespace` with a glob: the operator's own watch of Incidents serves the namespaces the
patterns match (Kopf's glob syntax, as for the other kinds) and leaves every other namespace's alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from tests.conftest import OperatorFactory

INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/{namespace}/incidents"


def incident() -> dict[str, Any]:
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": "checkout-slow"},
            "spec": {"severity": "P3", "summary": "checkout is slow", "steps": []}}


async def phase(api: httpx.AsyncClient, namespace: str) -> str | None:
    response = await api.get(INCIDENTS.format(namespace=namespace) + "/checkout-slow")
    assert response.status_code == 200, response.text
    found: str | None = (response.json().get("status") or {}).get("phase")
    return found


async def test_a_glob_serves_the_namespaces_it_matches_and_no_other(
        api: httpx.AsyncClient, start_operator: OperatorFactory) -> None:
    for namespace in ("team-a", "elsewhere"):
        response = await api.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
        assert response.status_code == 201, response.text
    await start_operator("--namespace", "team-*")
    for namespace in ("team-a", "elsewhere"):
        response = await api.post(INCIDENTS.format(namespace=namespace), json=incident())
        assert response.status_code == 201, response.text
    for _ in range(200):
        if await phase(api, "team-a") is not None:
            break
        await asyncio.sleep(0.1)
    assert await phase(api, "team-a") is not None, "the Incident in a matching namespace was not handled"
    await asyncio.sleep(1.0)  # the same watch delivers both: had it served `elsewhere`, it would be handled by now
    assert await phase(api, "elsewhere") is None
