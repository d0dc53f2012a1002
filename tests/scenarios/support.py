"""Helpers for operator tests: polling until the cluster shows what a user waits for."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from remediator import manifests
from remediator.sandbox import runner


async def wait_for(check: Callable[[], Awaitable[object]], timeout: float = 20.0, interval: float = 0.05) -> object:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


IMAGES = ("shop:1.0", "shop:1.1", "shop:1.2")  # revisions 1, 2, 3


def deployment(image: str, replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


def migration_job(*args: str) -> dict[str, Any]:
    return {"image": "shop-migrate:1.2", "args": list(args),
            "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "uri"}}}]}


async def web(client: manifests.Client) -> dict[str, Any]:
    found = await client.get("apps/v1", "Deployment", "default", "web")
    assert found is not None
    return found


async def deploy_three_revisions(client: manifests.Client, replicas: int = 3) -> None:
    """web rolled out three times: revision 3 (shop:1.2) is the bad deploy."""
    for image in IMAGES:
        await client.apply(deployment(image, replicas))

        async def rolled_out(image: str = image) -> bool:
            found = await web(client)
            status = found.get("status") or {}
            return (found["spec"]["template"]["spec"]["containers"][0]["image"] == image
                    and status.get("observedGeneration", 0) >= found["metadata"]["generation"]
                    and status.get("updatedReplicas", 0) == status.get("availableReplicas", 0) == replicas
                    and status.get("replicas", 0) == replicas)

        await wait_for(rolled_out)
    assert (await web(client))["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def image_of(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


async def events_of(sandbox: runner.RunningSandbox, name: str) -> list[dict[str, Any]]:
    """The Events whose involvedObject has this name, in the default namespace."""
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        response = await http.get("/api/v1/namespaces/default/events",
                                  params={"fieldSelector": f"involvedObject.name={name}"})
        items: list[dict[str, Any]] = response.json()["items"]
        return items
