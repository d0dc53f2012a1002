"""Contract: Events live `--event-ttl` after their last write (kube-apiserver's default: 1 h), then are gone.

kube-apiserver writes each Event under an etcd lease of the TTL, renewed by every write of that Event;
when it runs out etcd deletes the Event: reads no longer find it, its name is free again, and watchers
see it DELETED. Nothing else expires.
https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/ (--event-ttl)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from remediator.sandbox import runner, server, store

from .support import CONFIGMAPS, MERGE, NO_CONTROLLERS, Clock, created

EVENTS = "/api/v1/namespaces/default/events"
EVENTS_V1 = "/apis/events.k8s.io/v1/namespaces/default/events"
TTL = 60.0


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
async def ttl_api(clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    sandbox = server.Sandbox(store.ObjectStore(clock=clock, event_ttl=TTL))
    async with runner.running(sandbox=sandbox, simulations=NO_CONTROLLERS) as running, \
            httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        yield client


def event(name: str, message: str = "pulled") -> dict[str, object]:
    return {"metadata": {"name": name}, "reason": "Pulled", "message": message, "type": "Normal",
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"}}


async def names(api: httpx.AsyncClient, path: str = EVENTS) -> list[str]:
    listed = (await api.get(path)).json()
    return [item["metadata"]["name"] for item in listed["items"]]


async def test_an_event_is_gone_once_its_ttl_has_passed_since_it_was_written(ttl_api: httpx.AsyncClient,
                                                                             clock: Clock) -> None:
    await created(ttl_api, EVENTS, event("early"))
    clock.advance(TTL / 2)
    await created(ttl_api, EVENTS, event("late"))
    assert await names(ttl_api) == ["early", "late"]

    clock.advance(TTL / 2)
    assert await names(ttl_api) == ["late"]
    assert (await ttl_api.get(f"{EVENTS}/early")).status_code == 404
    assert await names(ttl_api, EVENTS_V1) == ["late"]
    await created(ttl_api, EVENTS, event("early", "pulled again"))  # the name is free again


async def test_a_write_to_an_event_renews_its_lease(ttl_api: httpx.AsyncClient, clock: Clock) -> None:
    await created(ttl_api, EVENTS, event("repeated"))
    clock.advance(TTL - 1)
    patched = await ttl_api.patch(f"{EVENTS}/repeated", json={"count": 2}, headers=MERGE)
    assert patched.status_code == 200, patched.text

    clock.advance(TTL - 1)
    assert (await ttl_api.get(f"{EVENTS}/repeated")).json()["count"] == 2
    clock.advance(1)
    assert (await ttl_api.get(f"{EVENTS}/repeated")).status_code == 404


async def test_a_watch_sees_an_expired_event_deleted(ttl_api: httpx.AsyncClient, clock: Clock) -> None:
    made = await created(ttl_api, EVENTS, event("watched"))
    clock.advance(TTL)

    async def first_line() -> dict[str, object]:
        async with ttl_api.stream("GET", EVENTS, params={"watch": "true",
                                                         "resourceVersion": made["metadata"]["resourceVersion"]}) \
                as response:
            async for line in response.aiter_lines():
                if line:
                    seen: dict[str, object] = json.loads(line)
                    return seen
        raise AssertionError("the watch ended without an event")

    seen = await asyncio.wait_for(first_line(), 10)
    assert seen["type"] == "DELETED"
    assert seen["object"]["metadata"]["name"] == "watched"  # type: ignore[index]


async def test_other_objects_never_expire(ttl_api: httpx.AsyncClient, clock: Clock) -> None:
    await created(ttl_api, CONFIGMAPS, {"metadata": {"name": "kept"}, "data": {"a": "1"}})
    await created(ttl_api, EVENTS, event("expiring"))
    clock.advance(TTL * 10)
    assert await names(ttl_api) == []
    assert (await ttl_api.get(f"{CONFIGMAPS}/kept")).status_code == 200


async def test_a_ttl_of_zero_keeps_events_for_ever(clock: Clock) -> None:
    kept = store.ObjectStore(clock=clock, event_ttl=0)
    events = kept.resource_type("", "v1", "events")
    kept.create(events, event("kept"), "default")
    clock.advance(365 * 24 * 3600)
    assert [e["metadata"]["name"] for e in kept.list(events, "default")] == ["kept"]


def test_a_negative_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        store.ObjectStore(event_ttl=-1)


def test_the_sandbox_command_takes_the_ttl_as_a_duration() -> None:
    from remediator import cli

    parser = cli.build_parser()
    assert parser.parse_args(["sandbox"]).event_ttl == 3600.0
    assert parser.parse_args(["sandbox", "--event-ttl", "90m"]).event_ttl == 5400.0
    with pytest.raises(SystemExit):
        parser.parse_args(["sandbox", "--event-ttl", "soon"])
