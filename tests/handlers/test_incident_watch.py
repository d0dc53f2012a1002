"""The operator's own list and watch of Incidents (handlers/incident_watch) against the sandbox API server.

What the queue is fed: every Incident listed, then each change once, in order; a stream the server ends
watched again without listing again; a version too old to resume (410) listed again, with the Incidents
deleted meanwhile reported; only the served namespaces; and lines of any length.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from remediator import kube
from remediator.handlers import incident_watch
from remediator.sandbox import runner, store

INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/{namespace}/incidents"
MERGE = {"Content-Type": "application/merge-patch+json"}


def incident(name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": name, **metadata},
            "spec": {"severity": "P3", "summary": f"{name} is slow", "steps": []}}


async def create(api: httpx.AsyncClient, name: str, namespace: str = "default", **metadata: Any) -> dict[str, Any]:
    response = await api.post(INCIDENTS.format(namespace=namespace), json=incident(name, **metadata))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class Seen:
    """What the watch delivered: (kind, namespace/name) in order, the bodies, and the vanished uids."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.vanished: list[str] = []

    def deliver(self, kind: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        self.events.append((kind, f"{meta['namespace']}/{meta['name']}"))
        self.bodies.append(body)

    def gone(self, uid: str, namespace: str) -> None:
        self.vanished.append(uid)

    async def until(self, condition: Callable[[], bool], seconds: float = 10.0) -> None:
        for _ in range(int(seconds / 0.05)):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"not seen in {seconds} s; seen: {self.events}, vanished: {self.vanished}")


@contextlib.asynccontextmanager
async def watching(watch: incident_watch.IncidentWatch) -> AsyncIterator[None]:
    task = asyncio.create_task(watch.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def watch_api(sandbox: runner.RunningSandbox, kubeconfig: pathlib.Path) -> AsyncIterator[Any]:
    api = await kube.async_client(kubeconfig)
    async with api:
        yield api


async def test_incidents_are_listed_then_each_change_is_delivered_once_without_managed_fields(
        api: httpx.AsyncClient, watch_api: Any) -> None:
    before = await create(api, "before")
    assert before["metadata"].get("managedFields"), "the sandbox keeps managedFields, as kube-apiserver does"
    seen = Seen()
    async with watching(incident_watch.IncidentWatch(watch_api, None, (), seen.deliver, seen.gone)):
        await seen.until(lambda: ("ADDED", "default/before") in seen.events)
        await create(api, "after")
        response = await api.patch(INCIDENTS.format(namespace="default") + "/before", headers=MERGE,
                                   json={"metadata": {"labels": {"team": "payments"}}})
        assert response.status_code == 200, response.text
        assert (await api.delete(INCIDENTS.format(namespace="default") + "/after")).status_code == 200
        await seen.until(lambda: ("DELETED", "default/after") in seen.events)
    assert seen.events == [("ADDED", "default/before"), ("ADDED", "default/after"),
                           ("MODIFIED", "default/before"), ("DELETED", "default/after")]
    assert seen.bodies[2]["metadata"]["labels"] == {"team": "payments"}
    assert all("managedFields" not in body["metadata"] for body in seen.bodies)
    assert seen.vanished == []


async def test_a_stream_the_server_ends_is_watched_again_from_where_it_was_without_listing_again(
        api: httpx.AsyncClient, watch_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incident_watch, "WATCH_SECONDS", 1)  # the server ends each stream after a second
    seen = Seen()
    async with watching(incident_watch.IncidentWatch(watch_api, "default", (), seen.deliver, seen.gone)):
        await create(api, "inc-0")
        await seen.until(lambda: len(seen.events) == 1)
        for index in range(1, 4):
            await asyncio.sleep(1.2)  # each one on a later stream
            await create(api, f"inc-{index}")
        await seen.until(lambda: len(seen.events) == 4)
        await asyncio.sleep(1.5)  # one more stream: a listing would deliver all four again
    assert seen.events == [("ADDED", f"default/inc-{index}") for index in range(4)]


class GatedWatch(incident_watch.IncidentWatch):
    """Lists, then waits for the test before it opens its first stream: a watch that was cut off."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.listed = asyncio.Event()
        self.resume = asyncio.Event()

    async def _stream(self, version: str) -> AsyncIterator[str]:
        self.listed.set()
        await self.resume.wait()
        async for seen in super()._stream(version):
            yield seen


async def test_a_version_too_old_lists_again_and_reports_the_incidents_deleted_meanwhile(
        api: httpx.AsyncClient, watch_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "HISTORY_PER_RESOURCE", 3)
    kept = await create(api, "kept")
    deleted = await create(api, "deleted")
    seen = Seen()
    watch = GatedWatch(watch_api, "default", (), seen.deliver, seen.gone)
    async with watching(watch):
        await asyncio.wait_for(watch.listed.wait(), 10)
        assert (await api.delete(INCIDENTS.format(namespace="default") + "/deleted")).status_code == 200
        for index in range(5):  # the history moves past the listing's version
            await create(api, f"new-{index}")
        watch.resume.set()
        await seen.until(lambda: seen.events.count(("ADDED", "default/new-4")) == 1)
    assert seen.vanished == [deleted["metadata"]["uid"]]
    assert seen.events.count(("ADDED", "default/kept")) == 2  # listed, and listed again after the 410
    assert ("DELETED", "default/deleted") not in seen.events
    assert kept["metadata"]["uid"] not in seen.vanished


@pytest.mark.parametrize(("patterns", "delivered"), [
    (("team-*",), ["team-a/inc"]),
    (("team-a", "default"), ["default/inc", "team-a/inc"]),
    (("!team-*",), ["default/inc", "ops/inc"]),
])
async def test_only_the_served_namespaces_incidents_are_delivered(
        api: httpx.AsyncClient, watch_api: Any, patterns: tuple[str, ...], delivered: list[str]) -> None:
    for namespace in ("team-a", "ops"):
        response = await api.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
        assert response.status_code == 201, response.text
    for namespace in ("default", "team-a", "ops"):
        await create(api, "inc", namespace)
    await create(api, "last", "default")  # every namespace's has been written before this one
    seen, everything = Seen(), Seen()
    watches = [incident_watch.IncidentWatch(watch_api, namespace, patterns, seen.deliver, seen.gone)
               for namespace in incident_watch.watched_namespaces(patterns)]
    assert [w.namespace for w in watches] == ([None] if "*" in "".join(patterns) else list(patterns))
    async with contextlib.AsyncExitStack() as stack:
        for watch in [*watches, incident_watch.IncidentWatch(watch_api, None, (), everything.deliver, everything.gone)]:
            await stack.enter_async_context(watching(watch))
        await everything.until(lambda: ("ADDED", "default/last") in everything.events)
        await asyncio.sleep(0.3)
    assert sorted(name for _, name in seen.events if name.endswith("/inc")) == delivered


async def test_an_incident_longer_than_aiohttps_default_line_limit_is_delivered_whole(
        api: httpx.AsyncClient, watch_api: Any) -> None:
    note = "x" * 200_000  # aiohttp's line reader refuses lines over 128 KiB unless the client reads more
    seen = Seen()
    async with watching(incident_watch.IncidentWatch(watch_api, "default", (), seen.deliver, seen.gone)):
        await create(api, "small")
        await seen.until(lambda: len(seen.events) == 1)
        await create(api, "large", annotations={"example.com/note": note})
        await create(api, "after")
        await seen.until(lambda: len(seen.events) == 3)
    assert [name for _, name in seen.events] == ["default/small", "default/large", "default/after"]
    assert seen.bodies[1]["metadata"]["annotations"]["example.com/note"] == note


async def test_a_refused_watch_is_tried_again_and_logged_without_the_answer(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox, kubeconfig: pathlib.Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(incident_watch, "RETRY_FIRST_SECONDS", 0.1)
    seen = Seen()
    async with await kube.async_client(kubeconfig) as watch_api:
        # A namespace the sandbox does not serve this resource in answers 404 to the listing.
        watch = incident_watch.IncidentWatch(watch_api, "default", (), seen.deliver, seen.gone)
        watch.namespace = "no such namespace/.."
        async with watching(watch):
            await seen.until(lambda: sum("watching incidents" in r.getMessage() for r in caplog.records) >= 2)
            watch.namespace = "default"
            await create(api, "inc")
            await seen.until(lambda: ("ADDED", "default/inc") in seen.events)
    failures = [r.getMessage() for r in caplog.records if "watching incidents" in r.getMessage()]
    assert all("trying again" in message and "{" not in message for message in failures), failures


NAMESPACES = ["myapp-test", "myapp-live", "myapp-pr-123", "myapp-pr-456", "otherapp-pr-123", "default", "team-a",
              "team-b", "kube-system", "a"]
PATTERNS = ["default", "team-*", "!team-*", "myapp-*, !*-pr-*, *pr-123", "!*-pr-*, *pr-123", "team-[ab]",
            "team-?", "*", "!*", "kube-*, !kube-system", "team-a, team-b", " team-a , !team-a"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_namespace_patterns_serve_what_kopf_serves_for_the_other_kinds(pattern: str) -> None:
    from kopf._cogs.structs import references  # Kopf's own matcher, read here only to compare with

    kopfs = [n for n in NAMESPACES if references.match_namespace(references.NamespaceName(n), pattern)]
    assert [n for n in NAMESPACES if incident_watch.served(n, (pattern,))] == kopfs


def test_a_pattern_with_any_glob_mark_is_watched_cluster_wide_and_plain_names_each_alone() -> None:
    assert incident_watch.watched_namespaces(()) == [None]
    assert incident_watch.watched_namespaces(("default", "ops", "default")) == ["default", "ops"]
    for glob in ("team-*", "team-?", "team-[ab]", "!team-a", "team-a,team-b", "team-a, team-b"):
        assert incident_watch.watched_namespaces(("default", glob)) == [None], glob


async def test_a_failure_handling_one_incident_leaves_the_watch_running_for_the_others(
        api: httpx.AsyncClient, watch_api: Any, caplog: pytest.LogCaptureFixture) -> None:
    seen = Seen()

    def deliver(kind: str, body: dict[str, Any]) -> None:
        if body["metadata"]["name"] == "broken":
            raise ValueError("https://hooks.example.com/services/T000/B000/s3cr3t-token")
        seen.deliver(kind, body)

    async with watching(incident_watch.IncidentWatch(watch_api, "default", (), deliver, seen.gone)):
        await create(api, "broken")
        await create(api, "after")
        await seen.until(lambda: ("ADDED", "default/after") in seen.events)
    assert seen.events == [("ADDED", "default/after")]
    assert "incident default/broken: handling its ADDED event failed (ValueError)" in caplog.messages
    assert "s3cr3t-token" not in caplog.text  # neither the message nor a traceback quotes what failed


class FailingOnceWatch(incident_watch.IncidentWatch):
    """Its first stream fails with an error no client names (as aiohttp's LineTooLong is not a ClientError)."""

    failed = False

    async def _stream(self, version: str) -> AsyncIterator[str]:
        if not self.failed:
            self.failed = True
            raise RuntimeError("unexpected")
        async for seen in super()._stream(version):
            yield seen


async def test_an_unexpected_failure_of_the_stream_is_logged_and_the_watch_goes_on(
        api: httpx.AsyncClient, watch_api: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(incident_watch, "RETRY_FIRST_SECONDS", 0.1)
    seen = Seen()
    async with watching(FailingOnceWatch(watch_api, "default", (), seen.deliver, seen.gone)):
        await seen.until(lambda: any("failed (RuntimeError)" in m for m in caplog.messages))
        await create(api, "after")
        await seen.until(lambda: ("ADDED", "default/after") in seen.events)
