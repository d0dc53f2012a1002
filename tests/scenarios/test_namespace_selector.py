"""`--namespace-selector`: an operator acts only in namespaces whose labels match, and follows the labels
as they change at runtime: a namespace that gains the label has its Incidents handled then, one that
loses it is let go of."""

from __future__ import annotations

import asyncio
from typing import Any

from remediator import manifests

from .support import wait_for
from .test_shards import deployment, incident

API = "remediator.dev/v1alpha1"


def namespace(name: str, team: str | None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"team": team} if team else {}}}


async def phase(client: manifests.Client, namespace: str, name: str) -> str:
    found = await client.get(API, "Incident", namespace, name) or {}
    return str((found.get("status") or {}).get("phase") or "")


async def test_incidents_are_handled_only_in_selected_namespaces_and_follow_their_labels(
        client: manifests.Client, start_operator: Any) -> None:
    for name, team in (("shop", "payments"), ("blog", None)):
        await client.apply(namespace(name, team))
        await client.apply(deployment(name))
    operator = await start_operator("--all-namespaces", "--namespace-selector", "team=payments", "--cooldown", "0s")
    await client.apply(incident("shop", 0))
    await client.apply(incident("blog", 0))
    await wait_for(lambda: phase(client, "shop", "busy-0"), timeout=30)
    await asyncio.sleep(2)
    assert await phase(client, "blog", "busy-0") == "", "blog's labels do not match: its Incident is left alone"

    # blog gains the label: its waiting Incident is handled; shop loses it: a new one there is left alone.
    await client.apply(namespace("blog", "payments"))
    await wait_for(lambda: phase(client, "blog", "busy-0"), timeout=30)
    await client.apply(namespace("shop", "shipping"))
    await wait_for(lambda: asyncio.sleep(0, "namespace shop no longer matches" in operator.log), timeout=30)
    await client.apply(incident("shop", 1))
    await asyncio.sleep(2)
    assert await phase(client, "shop", "busy-1") == ""
    assert operator.process.returncode is None, operator.log


async def test_a_selector_the_api_server_refuses_ends_the_operator_saying_so(
        start_operator: Any, client: manifests.Client) -> None:
    try:
        operator = await start_operator("--all-namespaces", "--namespace-selector", "team in (payments")
    except AssertionError as exited:
        log = str(exited)
    else:
        async with asyncio.timeout(30):
            await operator.process.wait()
        assert operator.process.returncode == 2
        log = operator.log
    assert "--namespace-selector 'team in (payments': the API server refused it" in log
