"""Contract: watches deliver every change once, in order, from where the client says it is.

https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kubernetes.client
import kubernetes.watch
import pytest

from remediator.sandbox import controllers, runner, store

from .support import CONFIGMAPS, INCIDENTS, MERGE, NO_CONTROLLERS, PODS, created


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


async def labelled(api: httpx.AsyncClient, name: str, **labels: str | None) -> dict[str, Any]:
    response = await api.patch(f"{CONFIGMAPS}/{name}", json={"metadata": {"labels": labels}}, headers=MERGE)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def events(lines: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    """The next `count` watch events of a stream (within a few seconds)."""
    received = []
    async with asyncio.timeout(3):
        while len(received) < count:
            line = await anext(lines)
            if line.strip():
                received.append(json.loads(line))
    return received


def summary(received: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in received]


async def test_a_watch_from_a_lists_version_gets_exactly_the_later_changes_in_order(
        api: httpx.AsyncClient) -> None:
    """List, then watch from the list's resourceVersion: every later change arrives once, in order,
    and nothing from before the list.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
    """
    await created(api, CONFIGMAPS, {"metadata": {"name": "before"}})
    listed = (await api.get(CONFIGMAPS)).json()
    rv = listed["metadata"]["resourceVersion"]
    await created(api, CONFIGMAPS, {"metadata": {"name": "one"}})
    await labelled(api, "one", step="2")
    await api.delete(f"{CONFIGMAPS}/before")
    async with api.stream("GET", CONFIGMAPS, params={"watch": "true", "resourceVersion": rv}) as stream:
        lines = stream.aiter_lines()
        await created(api, CONFIGMAPS, {"metadata": {"name": "two"}})
        received = await events(lines, 4)
    assert summary(received) == [("ADDED", "one"), ("MODIFIED", "one"), ("DELETED", "before"), ("ADDED", "two")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in received]
    assert versions == sorted(versions) and len(set(versions)) == 4 and versions[0] > int(rv)


async def test_a_watch_without_a_version_starts_with_the_current_objects_as_added(
        api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-watch"""
    await created(api, CONFIGMAPS, {"metadata": {"name": "a"}})
    await created(api, CONFIGMAPS, {"metadata": {"name": "b"}})
    async with api.stream("GET", CONFIGMAPS, params={"watch": "true"}) as stream:
        lines = stream.aiter_lines()
        initial = await events(lines, 2)
        await api.delete(f"{CONFIGMAPS}/a")
        later = await events(lines, 1)
    assert summary(initial) == [("ADDED", "a"), ("ADDED", "b")]
    assert summary(later) == [("DELETED", "a")]


async def test_a_watch_from_a_version_too_old_gets_an_error_event_with_410(
        api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the requested version is no longer in the history, the watch answers 200 with one
    ERROR event holding a 410 Expired Status; the client must list again.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#410-gone-responses
    """
    monkeypatch.setattr(store, "HISTORY_PER_RESOURCE", 3)
    first = await created(api, CONFIGMAPS, {"metadata": {"name": "cm-0"}})
    for index in range(1, 6):
        await created(api, CONFIGMAPS, {"metadata": {"name": f"cm-{index}"}})
    async with api.stream("GET", CONFIGMAPS, params={
            "watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]}) as stream:
        assert stream.status_code == 200
        received = await events(stream.aiter_lines(), 1)
    assert received[0]["type"] == "ERROR"
    status = received[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {first['metadata']['resourceVersion']} (")


async def test_the_history_keeps_the_last_seconds_of_events_not_every_write(
        api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """kube-apiserver's watch cache keeps about 75 s of events (at least 100), not every write ever made:
    a watch from a version that aged out gets 410 Expired, one from a recent version resumes."""
    monkeypatch.setattr(store, "HISTORY_FRESH_SECONDS", 0.5)
    monkeypatch.setattr(store, "HISTORY_MIN", 2)
    first = await created(api, CONFIGMAPS, {"metadata": {"name": "cm-0"}})
    await created(api, CONFIGMAPS, {"metadata": {"name": "cm-1"}})
    await asyncio.sleep(0.6)
    recent = [await created(api, CONFIGMAPS, {"metadata": {"name": f"cm-{index}"}}) for index in range(2, 5)]
    async with api.stream("GET", CONFIGMAPS, params={
            "watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]}) as stream:
        expired = await events(stream.aiter_lines(), 1)
    async with api.stream("GET", CONFIGMAPS, params={
            "watch": "true", "resourceVersion": recent[0]["metadata"]["resourceVersion"]}) as stream:
        resumed = await events(stream.aiter_lines(), 2)
    assert (expired[0]["type"], expired[0]["object"]["code"]) == ("ERROR", 410)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in resumed] == [("ADDED", "cm-3"), ("ADDED", "cm-4")]


async def test_timeout_seconds_ends_the_stream(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/kubernetes-api/common-parameters/common-parameters/#timeoutseconds"""
    async with asyncio.timeout(3):
        async with api.stream("GET", CONFIGMAPS, params={"watch": "true", "timeoutSeconds": "1"}) as stream:
            assert [line async for line in stream.aiter_lines() if line] == []


async def test_an_object_leaving_or_entering_the_selection_is_deleted_or_added_for_the_watch(
        api: httpx.AsyncClient) -> None:
    """A watch with a label selector sees an object that stops matching as DELETED, and one that
    starts matching as ADDED.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
    """
    await created(api, CONFIGMAPS, {"metadata": {"name": "cm", "labels": {"app": "web"}}})
    rv = (await api.get(CONFIGMAPS)).json()["metadata"]["resourceVersion"]
    async with api.stream("GET", CONFIGMAPS, params={"watch": "true", "resourceVersion": rv,
                                                     "labelSelector": "app=web"}) as stream:
        lines = stream.aiter_lines()
        await labelled(api, "cm", app="db")
        await labelled(api, "cm", extra="x")  # not selected before or after: unseen
        await labelled(api, "cm", app="web")
        await labelled(api, "cm", extra="y")
        received = await events(lines, 3)
    assert [e["type"] for e in received] == ["DELETED", "ADDED", "MODIFIED"]
    assert received[0]["object"]["metadata"]["labels"]["app"] == "db"


async def test_a_field_selector_watch_follows_a_pods_phase(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/"""
    await created(api, PODS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    async with api.stream("GET", PODS, params={"watch": "true", "fieldSelector": "status.phase=Running"}) as stream:
        lines = stream.aiter_lines()
        await api.patch(f"{PODS}/p/status", json={"status": {"phase": "Running"}}, headers=MERGE)
        await api.patch(f"{PODS}/p/status", json={"status": {"phase": "Succeeded"}}, headers=MERGE)
        received = await events(lines, 2)
    assert summary(received) == [("ADDED", "p"), ("DELETED", "p")]


async def test_bookmarks_carry_the_version_reached(api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """With allowWatchBookmarks=true the server may send BOOKMARK events: an object of the watched
    kind holding only metadata.resourceVersion, from which a new watch can resume.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks
    """
    sandbox.sandbox.bookmark_interval = 0.05
    await created(api, INCIDENTS, {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
                                   "metadata": {"name": "i"}, "spec": {"severity": "P1", "summary": "x"}})
    async with api.stream("GET", INCIDENTS, params={"watch": "true", "allowWatchBookmarks": "true"}) as stream:
        lines = stream.aiter_lines()
        added, bookmark = await events(lines, 2)
        await created(api, CONFIGMAPS, {"metadata": {"name": "elsewhere"}})
        later = await events(lines, 1)
    assert added["type"] == "ADDED"
    assert bookmark == {"type": "BOOKMARK", "object": {
        "kind": "Incident", "apiVersion": "remediator.dev/v1alpha1",
        "metadata": {"resourceVersion": added["object"]["metadata"]["resourceVersion"]}}}
    assert later[0]["type"] == "BOOKMARK"
    assert int(later[0]["object"]["metadata"]["resourceVersion"]) > int(bookmark["object"]["metadata"]
                                                                        ["resourceVersion"])


async def test_a_watch_list_ends_its_initial_events_with_an_annotated_bookmark(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#streaming-lists"""
    await created(api, CONFIGMAPS, {"metadata": {"name": "a"}})
    async with api.stream("GET", CONFIGMAPS, params={"watch": "true", "sendInitialEvents": "true",
                                                     "allowWatchBookmarks": "true",
                                                     "resourceVersionMatch": "NotOlderThan"}) as stream:
        added, bookmark = await events(stream.aiter_lines(), 2)
    assert summary([added]) == [("ADDED", "a")]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_the_official_client_watches_from_a_list(api: httpx.AsyncClient,
                                                       core_v1: kubernetes.client.CoreV1Api) -> None:
    """kubernetes.watch.Watch lists, then watches from the list's version.

    https://github.com/kubernetes-client/python/blob/master/kubernetes/base/watch/watch.py
    """
    await created(api, CONFIGMAPS, {"metadata": {"name": "old"}})
    rv = (await api.get(CONFIGMAPS)).json()["metadata"]["resourceVersion"]

    def first_two() -> list[tuple[str, str]]:
        watch = kubernetes.watch.Watch()
        seen = []
        for event in watch.stream(core_v1.list_namespaced_config_map, "default", resource_version=rv,
                                  timeout_seconds=3):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                watch.stop()
        return seen

    watching = asyncio.create_task(asyncio.to_thread(first_two))
    # Whether the watch opens before or after these changes, it starts from the list's version.
    await created(api, CONFIGMAPS, {"metadata": {"name": "new"}})
    await api.delete(f"{CONFIGMAPS}/old")
    assert await watching == [("ADDED", "new"), ("DELETED", "old")]


async def test_a_watch_from_a_version_that_is_not_a_number_is_invalid(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions"""
    response = await api.get(CONFIGMAPS, params={"watch": "true", "resourceVersion": "abc"})
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "resourceVersion"
