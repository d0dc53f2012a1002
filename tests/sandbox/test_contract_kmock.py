"""Contract: behind kmock, declared reactions (faults) win and everything else is the sandbox.

The request log and the reactions are kmock's own DSL: https://kmock.readthedocs.io/latest/
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from remediator.sandbox import controllers, runner

from .support import CONFIGMAPS, NO_CONTROLLERS


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


@pytest.fixture()
async def client(kmock_sandbox: runner.RunningSandbox) -> Any:
    async with httpx.AsyncClient(base_url=kmock_sandbox.url, timeout=5) as http:
        yield http


async def test_a_declared_fault_fails_only_the_requests_it_matches(
        kmock_sandbox: runner.RunningSandbox, client: httpx.AsyncClient) -> None:
    """A reaction like `mock['get <path>'] << 500` answers matching requests; others reach the sandbox."""
    mock: Any = kmock_sandbox.handler  # type: ignore[attr-defined]
    assert (await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})).status_code == 201
    mock[f"get {CONFIGMAPS}"] << 500

    assert (await client.get(CONFIGMAPS)).status_code == 500
    assert (await client.get(f"{CONFIGMAPS}/c")).status_code == 200  # another path: the sandbox
    assert (await client.post(CONFIGMAPS, json={"metadata": {"name": "d"}})).status_code == 201
    assert {o["metadata"]["name"] for o in kmock_sandbox.store.list(
        kmock_sandbox.store.resource_type("", "v1", "configmaps"))} == {"c", "d"}


async def test_a_fault_can_carry_a_kubernetes_status(kmock_sandbox: runner.RunningSandbox,
                                                     client: httpx.AsyncClient) -> None:
    """A reaction can answer a Status body with its code, e.g. a 409 Conflict to test a retry."""
    mock: Any = kmock_sandbox.handler  # type: ignore[attr-defined]
    conflict = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
                "message": "injected"}
    mock[f"patch {CONFIGMAPS}/c"] << 409 << conflict
    await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
    response = await client.patch(f"{CONFIGMAPS}/c", json={"data": {"a": "1"}},
                                  headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 409 and response.json()["message"] == "injected"


async def test_the_request_log_records_every_request(kmock_sandbox: runner.RunningSandbox,
                                                     client: httpx.AsyncClient) -> None:
    """kmock logs all requests, served by a reaction or by the sandbox; views filter the log."""
    mock: Any = kmock_sandbox.handler  # type: ignore[attr-defined]
    before = len(mock)
    await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
    await client.get(f"{CONFIGMAPS}/c")
    await client.get(f"{CONFIGMAPS}/c")
    assert len(mock) == before + 3
    assert len(mock[f"get {CONFIGMAPS}/c"]) == 2
    assert len(mock[f"post {CONFIGMAPS}"]) == 1
    assert mock[f"post {CONFIGMAPS}"][0].data == {"metadata": {"name": "c"}}


async def test_a_watch_streams_through_kmock(kmock_sandbox: runner.RunningSandbox, client: httpx.AsyncClient) -> None:
    """Streaming responses of the sandbox pass through kmock's handler unchanged."""
    async with client.stream("GET", CONFIGMAPS, params={"watch": "true"}) as stream:
        lines = stream.aiter_lines()
        await client.post(CONFIGMAPS, json={"metadata": {"name": "c"}})
        async with asyncio.timeout(3):
            event = json.loads(await anext(lines))
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "c")
