"""Kopf against the sandbox behaves as against a real cluster: each handler runs once per change.

Kopf relies on watch resourceVersion semantics, merge/JSON patches with a `test` on the
resourceVersion, and on its bookkeeping annotations surviving (they are under remediator.dev/,
because the API server prunes undeclared status fields of custom resources).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kopf
import pytest

from remediator.operator_main import operator_settings
from remediator.sandbox import runner

INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"


def incident(name: str, summary: str = "first") -> dict[str, Any]:
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": name},
            "spec": {"severity": "P2", "summary": summary,
                     "steps": [{"name": "s", "scale": {"target": {"kind": "Deployment", "name": "w"},
                                                       "replicas": 1}}]}}


@contextlib.asynccontextmanager
async def kopf_operator(sandbox: runner.RunningSandbox, registry: kopf.OperatorRegistry) -> AsyncIterator[None]:
    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=sandbox.url)

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(registry=registry, settings=operator_settings(), standalone=True,
                                             namespaces=["default"], stop_flag=stop, ready_flag=ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def settle(calls: collections.Counter[tuple[str, str]], expected: dict[tuple[str, str], int]) -> None:
    """Wait until the expected calls happened, then a little longer to catch any repeat."""
    for _ in range(200):
        if all(calls[key] >= count for key, count in expected.items()):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)


@pytest.mark.timeout(60)
async def test_kopf_runs_create_update_and_delete_handlers_exactly_once_per_change(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient) -> None:
    registry = kopf.OperatorRegistry()
    calls: collections.Counter[tuple[str, str]] = collections.Counter()

    @kopf.on.create("remediator.dev", "v1alpha1", "incidents", id="created", registry=registry)
    def created(name: str, **_: Any) -> None:
        calls["create", name] += 1

    @kopf.on.update("remediator.dev", "v1alpha1", "incidents", id="updated", field="spec", registry=registry)
    def updated(name: str, **_: Any) -> None:
        calls["update", name] += 1

    @kopf.on.delete("remediator.dev", "v1alpha1", "incidents", id="deleted", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        calls["delete", name] += 1

    names = [f"inc-{i}" for i in range(5)]
    async with kopf_operator(sandbox, registry):
        for name in names:
            assert (await api.post(INCIDENTS, json=incident(name))).status_code == 201
        await settle(calls, {("create", n): 1 for n in names})
        for name in names:
            patch = {"spec": {"summary": "second"}, "metadata": {"labels": {"seen": "yes"}}}
            response = await api.patch(f"{INCIDENTS}/{name}", json=patch,
                                       headers={"Content-Type": "application/merge-patch+json"})
            assert response.status_code == 200
            # A status-only change is not a change of the spec: no update handler for it.
            await api.patch(f"{INCIDENTS}/{name}/status", json={"status": {"phase": "Remediating"}},
                            headers={"Content-Type": "application/merge-patch+json"})
        await settle(calls, {("update", n): 1 for n in names})
        for name in names:
            assert (await api.delete(f"{INCIDENTS}/{name}")).status_code in (200, 202)
        await settle(calls, {("delete", n): 1 for n in names})
        remaining = (await api.get(INCIDENTS)).json()["items"]

    assert calls == collections.Counter({(kind, n): 1 for n in names for kind in ("create", "update", "delete")})
    assert remaining == [], "the finalizer was released and the objects are gone"


@pytest.mark.timeout(60)
async def test_kopf_keeps_its_retry_progress_in_remediator_annotations(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient) -> None:
    """A handler that fails once is retried once: the progress survives because it is not in status."""
    registry = kopf.OperatorRegistry()
    attempts: list[int] = []
    seen_annotations: list[dict[str, str]] = []

    @kopf.on.create("remediator.dev", "v1alpha1", "incidents", id="flaky", registry=registry)
    def flaky(retry: int, annotations: dict[str, str], **_: Any) -> None:
        attempts.append(retry)
        seen_annotations.append(dict(annotations))
        if retry == 0:
            raise kopf.TemporaryError("not yet", delay=0.2)

    async with kopf_operator(sandbox, registry):
        await api.post(INCIDENTS, json=incident("flaky"))
        for _ in range(100):
            if len(attempts) >= 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        body = (await api.get(f"{INCIDENTS}/flaky")).json()

    assert attempts == [0, 1]
    assert any(key.startswith("remediator.dev/") for key in seen_annotations[1])
    assert "kopf" not in body.get("status", {})
    assert "remediator.dev/last-handled-configuration" in body["metadata"]["annotations"]
