"""Helpers for operator tests: the examples a user applies, and polling until the cluster shows
what a user waits for."""

from __future__ import annotations

import asyncio
import copy
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import simulated

from remediator import manifests
from remediator.sandbox import runner

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
# A scenario whose pods or Jobs must run (a rollout that completes, a Job that ends) runs made-up images
# that only the sandbox's images registry runs: a real cluster cannot pull them.
MADE_UP_IMAGES = pytest.mark.sandbox_only(
    "the images registry: its pods or Jobs run made-up images (shop:1.2, registry.example.com/...)")


def example(path: str) -> list[dict[str, Any]]:
    """The YAML documents of examples/<path>, in file order: what `kubectl apply -f` sends.

    Fresh dicts on every call, so a test may adapt one field to its environment before applying.
    """
    return [document for document in yaml.safe_load_all((EXAMPLES / path).read_text()) if document]


def example_object(path: str, kind: str) -> dict[str, Any]:
    """The one document of this kind in examples/<path>; fails when there is none or more than one."""
    [found] = [document for document in example(path) if document["kind"] == kind]
    return found


def step_of(incident: dict[str, Any], name: str) -> dict[str, Any]:
    """The Incident manifest's step with this name (the dict itself, to adapt in place)."""
    steps: list[dict[str, Any]] = incident["spec"]["steps"]
    [found] = [step for step in steps if step["name"] == name]
    return found


async def apply_example(client: manifests.Client, path: str) -> list[str]:
    """`kubectl apply -f examples/<path>` as written; returns the applied "kind/name"s."""
    return await client.apply_file(EXAMPLES / path)


async def current(client: manifests.Client, manifest: dict[str, Any]) -> dict[str, Any]:
    """The object a manifest describes, as the API server holds it now; fails when it does not exist."""
    meta = manifest["metadata"]
    found = await client.get(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
    assert found is not None, f"{manifest['kind']}/{meta['name']} does not exist"
    return found


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
# Revisions 1 and 2 of the examples' Deployments; revision 3, the bad deploy, is the file as written.
CHECKOUT_EARLIER = ("registry.example.com/checkout:1.0", "registry.example.com/checkout:1.1")
ORDERS_EARLIER = ("registry.example.com/orders:1.2", "registry.example.com/orders:1.3")


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


async def roll_out(client: manifests.Client, manifest: dict[str, Any]) -> dict[str, Any]:
    """Apply a Deployment and wait for its rollout (see `rolled_out`); returns it."""
    await client.apply(manifest)
    return await rolled_out(client, manifest)


async def rolled_out(client: manifests.Client, manifest: dict[str, Any]) -> dict[str, Any]:
    """Wait until the Deployment runs the manifest's image on all its replicas, as `kubectl rollout
    status` would; returns it."""
    replicas = manifest["spec"]["replicas"]

    async def complete() -> dict[str, Any] | None:
        found = await current(client, manifest)
        status = found.get("status") or {}
        done = (image_of(found) == image_of(manifest)
                and status.get("observedGeneration", 0) >= found["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == status.get("availableReplicas", 0) == replicas
                and status.get("replicas", 0) == replicas)
        return found if done else None

    # Pods with a readiness probe take simulated time to get ready, one surge after another.
    found = await wait_for(complete, timeout=simulated(60, 20))
    assert isinstance(found, dict)
    return found


async def deploy_three_revisions(client: manifests.Client, replicas: int = 3) -> None:
    """web rolled out three times: revision 3 (shop:1.2) is the bad deploy."""
    for image in IMAGES:
        await roll_out(client, deployment(image, replicas))
    assert (await web(client))["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


async def deploy_history(client: manifests.Client, path: str, *earlier_images: str) -> dict[str, Any]:
    """The Deployment in examples/<path> deployed once per earlier image, then the file applied as
    written (its latest revision); waits for every rollout and returns the Deployment as written."""
    latest = example_object(path, "Deployment")
    for image in earlier_images:
        await roll_out(client, with_image(latest, image))
    await apply_example(client, path)
    deployed = await rolled_out(client, latest)
    assert deployed["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == str(len(earlier_images) + 1)
    return latest


def image_of(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def with_image(manifest: dict[str, Any], image: str) -> dict[str, Any]:
    """A copy of a workload manifest whose (first) container runs `image`."""
    changed = copy.deepcopy(manifest)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return changed


async def events_of(sandbox: runner.RunningSandbox, name: str) -> list[dict[str, Any]]:
    """The Events whose involvedObject has this name, in the default namespace."""
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        response = await http.get("/api/v1/namespaces/default/events",
                                  params={"fieldSelector": f"involvedObject.name={name}"})
        items: list[dict[str, Any]] = response.json()["items"]
        return items
