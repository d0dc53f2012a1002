"""Kopf against the sandbox behaves as against a real cluster: each handler runs once per change.

Kopf relies on watch resourceVersion semantics, merge/JSON patches with a `test` on the
resourceVersion, and on its bookkeeping annotations surviving (they are under remediator.dev/,
because the API server prunes undeclared status fields of custom resources).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
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


class Handled:
    """What the handlers were called for, by (handler, object name), and a way to wait for it."""

    def __init__(self) -> None:
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.gone: set[str] = set()  # objects whose DELETED event Kopf has processed
        self._changed = asyncio.Event()

    def note(self, handler: str, name: str) -> None:
        self.calls[handler, name] += 1
        self._changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `condition()` holds, checking after each handler call; fail after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def kopf_operator(sandbox: runner.RunningSandbox, registry: kopf.OperatorRegistry,
                        handled: Handled) -> AsyncIterator[None]:
    """Kopf running `registry` against the sandbox, noting in `handled.gone` each Incident whose DELETED
    event it has processed: an object's events are processed one after another and DELETED is its
    last, so after it no handler can run for that object any more."""

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=sandbox.url)

    @kopf.on.event("remediator.dev", "v1alpha1", "incidents", id="deletions", registry=registry)
    async def deletions(type: str, name: str, **_: Any) -> None:
        if type == "DELETED":
            handled.gone.add(name)
            handled.note("gone", name)

    stop, ready = asyncio.Event(), asyncio.Event()
    # These tests hang change handlers on Incidents, so Kopf keeps the Incidents' diff-base here.
    settings = operator_settings(diff_base_kinds=frozenset({"Incident"}))
    task = asyncio.create_task(kopf.operator(registry=registry, settings=settings, standalone=True,
                                             namespaces=["default"], stop_flag=stop, ready_flag=ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.timeout(60)
async def test_kopf_runs_create_update_and_delete_handlers_exactly_once_per_change(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient) -> None:
    registry = kopf.OperatorRegistry()
    handled = Handled()

    @kopf.on.create("remediator.dev", "v1alpha1", "incidents", id="created", registry=registry)
    async def created(name: str, **_: Any) -> None:
        handled.note("create", name)

    @kopf.on.update("remediator.dev", "v1alpha1", "incidents", id="updated", field="spec", registry=registry)
    async def updated(name: str, **_: Any) -> None:
        handled.note("update", name)

    @kopf.on.delete("remediator.dev", "v1alpha1", "incidents", id="deleted", registry=registry)
    async def deleted(name: str, **_: Any) -> None:
        handled.note("delete", name)

    names = [f"inc-{i}" for i in range(5)]
    async with kopf_operator(sandbox, registry, handled):
        for name in names:
            assert (await api.post(INCIDENTS, json=incident(name))).status_code == 201
        await handled.until(lambda: all(handled.calls["create", n] for n in names))
        for name in names:
            patch = {"spec": {"summary": "second"}, "metadata": {"labels": {"seen": "yes"}}}
            response = await api.patch(f"{INCIDENTS}/{name}", json=patch,
                                       headers={"Content-Type": "application/merge-patch+json"})
            assert response.status_code == 200
            # A status-only change is not a change of the spec: no update handler for it.
            await api.patch(f"{INCIDENTS}/{name}/status", json={"status": {"phase": "Remediating"}},
                            headers={"Content-Type": "application/merge-patch+json"})
        await handled.until(lambda: all(handled.calls["update", n] for n in names))
        for name in names:
            assert (await api.delete(f"{INCIDENTS}/{name}")).status_code in (200, 202)
        # Every handler call, a repeat included, comes before the object's last event.
        await handled.until(lambda: handled.gone >= set(names))
        remaining = (await api.get(INCIDENTS)).json()["items"]

    expected = {(kind, n): 1 for n in names for kind in ("create", "update", "delete", "gone")}
    assert handled.calls == collections.Counter(expected)
    assert remaining == [], "the finalizer was released and the objects are gone"


@pytest.mark.timeout(60)
async def test_kopf_keeps_its_retry_progress_in_remediator_annotations(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient) -> None:
    """A handler that fails once is retried once: the progress survives because it is not in status."""
    registry = kopf.OperatorRegistry()
    handled = Handled()
    attempts: list[int] = []
    seen_annotations: list[dict[str, str]] = []

    @kopf.on.create("remediator.dev", "v1alpha1", "incidents", id="flaky", registry=registry)
    async def flaky(name: str, retry: int, annotations: Mapping[str, str], **_: Any) -> None:
        attempts.append(retry)
        seen_annotations.append(dict(annotations))
        handled.note("flaky", name)
        if retry == 0:
            raise kopf.TemporaryError("not yet", delay=0.2)

    @kopf.on.update("remediator.dev", "v1alpha1", "incidents", id="marked", field="metadata.labels",
                    registry=registry)
    async def marked(name: str, **_: Any) -> None:
        handled.note("marked", name)

    async with kopf_operator(sandbox, registry, handled):
        await api.post(INCIDENTS, json=incident("flaky"))
        await handled.until(lambda: len(attempts) >= 2)
        body = (await api.get(f"{INCIDENTS}/flaky")).json()
        # A later change handled as an update: every processing before it is over, and had the
        # creation not been recorded as done, Kopf would have run `flaky` again instead.
        await api.patch(f"{INCIDENTS}/flaky", json={"metadata": {"labels": {"marker": "1"}}},
                        headers={"Content-Type": "application/merge-patch+json"})
        await handled.until(lambda: handled.calls["marked", "flaky"] > 0)

    assert attempts == [0, 1]
    assert any(key.startswith("remediator.dev/") for key in seen_annotations[1])
    assert "kopf" not in body.get("status", {})
    assert "remediator.dev/last-handled-configuration" in body["metadata"]["annotations"]
