"""Contract: a Service's EndpointSlices and Endpoints follow its pods, as kube-controller-manager keeps them.

Endpoint conditions: `serving` is the pod's Ready condition, `terminating` its deletionTimestamp,
`ready` serving and not terminating (always true with publishNotReadyAddresses). The legacy
Endpoints lists ready pods in `addresses` and the others in `notReadyAddresses`.
https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#conditions
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import kubernetes
import pytest
from tests.scenarios.support import wait_for

from remediator.sandbox import runner

from .support import DEPLOYMENTS, MERGE, PODS, created

SERVICES = "/api/v1/namespaces/default/services"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
ENDPOINTS = "/api/v1/namespaces/default/endpoints"
WEB_SLICES = {"labelSelector": "kubernetes.io/service-name=web"}
PROBE = {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1}
Conditions = tuple[bool, bool, bool]  # ready, serving, terminating


def deployment(image: str = "web:1.0", replicas: int = 2, grace: int = 30) -> dict[str, Any]:
    return {"metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"terminationGracePeriodSeconds": grace,
                                           "containers": [{"name": "web", "image": image, "readinessProbe": PROBE,
                                                           "ports": [{"name": "http", "containerPort": 8080}]}]}}}}


def service(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                     **spec}}


def pod(name: str, image: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": "web", **labels}},
            "spec": {"containers": [{"name": "web", "image": image, "readinessProbe": PROBE,
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}


def by_pod(slices: list[dict[str, Any]]) -> dict[str, Conditions]:
    """Every endpoint of the slices: pod name → (ready, serving, terminating)."""
    return {e["targetRef"]["name"]: (e["conditions"]["ready"], e["conditions"]["serving"],
                                     e["conditions"]["terminating"])
            for s in slices for e in s.get("endpoints") or ()}


async def web_slices(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get(SLICES, params=WEB_SLICES)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def ready_pods(api: httpx.AsyncClient, count: int,
                     besides: set[str] | frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Wait until exactly `count` pods are live (not terminating), all ready and none of `besides`."""
    async def ready() -> list[dict[str, Any]]:
        items = (await api.get(PODS)).json()["items"]
        live = [p for p in items if not p["metadata"].get("deletionTimestamp") and p["metadata"]["name"] not in besides]
        ok = [p for p in live if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in p.get("status", {}).get("conditions") or ())]
        return ok if len(ok) == count == len(live) else []
    return list(await wait_for(ready))  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def slice_history(api: httpx.AsyncClient) -> AsyncIterator[dict[str, list[Conditions]]]:
    """Every distinct conditions each pod's endpoint went through, from a watch on the web slices."""
    seen: dict[str, list[Conditions]] = {}
    current: dict[str, dict[str, Any]] = {}
    opened = asyncio.Event()

    async def watch() -> None:
        async with api.stream("GET", SLICES, params={**WEB_SLICES, "watch": "true"}, timeout=None) as stream:
            opened.set()
            async for line in stream.aiter_lines():
                event = json.loads(line)
                name = event["object"]["metadata"]["name"]
                if event["type"] == "DELETED":
                    current.pop(name, None)
                else:
                    current[name] = event["object"]
                for pod_name, conditions in by_pod(list(current.values())).items():
                    history = seen.setdefault(pod_name, [])
                    if not history or history[-1] != conditions:
                        history.append(conditions)

    task = asyncio.create_task(watch())
    await asyncio.wait_for(opened.wait(), 10)
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_service_gets_a_slice_of_its_ready_pods_with_ports_owner_and_labels(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """addressType IPv4, the targetPort resolved by name to the container port, one endpoint per pod
    with its IP, node and targetRef, the Service's labels, and the Service as controller owner."""
    await created(api, DEPLOYMENTS, deployment())
    svc = await created(api, SERVICES, service())
    web = await ready_pods(api, 2)

    async def two_ready() -> list[dict[str, Any]]:
        slices = await web_slices(api)
        return slices if set(by_pod(slices).values()) == {(True, True, False)} and len(by_pod(slices)) == 2 else []
    [endpoint_slice] = await wait_for(two_ready)  # type: ignore[misc]
    assert endpoint_slice["addressType"] == "IPv4"
    assert endpoint_slice["metadata"]["name"].startswith("web-")
    assert endpoint_slice["metadata"]["labels"] == {
        "tier": "front", "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    [owner] = endpoint_slice["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("Service", "web",
                                                                                svc["metadata"]["uid"], True)
    assert endpoint_slice["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    expected = sorted((p["status"]["podIP"], p["spec"]["nodeName"], p["metadata"]["uid"]) for p in web)
    assert sorted((e["addresses"][0], e["nodeName"], e["targetRef"]["uid"])
                  for e in endpoint_slice["endpoints"]) == expected
    assert all(e["targetRef"]["kind"] == "Pod" for e in endpoint_slice["endpoints"])


async def test_a_rollout_shows_new_pods_becoming_ready_and_old_ones_terminating_then_gone(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """Through a rollout to a slow-starting image, a new pod's endpoint is neither ready nor serving
    until its readiness probe passes, then both; an old pod's is terminating and not ready during its
    grace period, then gone."""
    await created(api, DEPLOYMENTS, deployment(grace=200))
    await created(api, SERVICES, service())
    old = {p["metadata"]["name"] for p in await ready_pods(api, 2)}
    await wait_for(lambda: _has(api, old))
    async with slice_history(api) as seen:
        # Ready 200 s (scaled) after it starts at the earliest: the watch sees it not ready first however
        # slow a loaded machine is.
        slow = {"name": "web", "image": "web:slow-start", "readinessProbe": {**PROBE, "initialDelaySeconds": 200}}
        patch = {"spec": {"template": {"spec": {"containers": [slow]}}}}
        response = await api.patch(f"{DEPLOYMENTS}/web", content=json.dumps(patch),
                                   headers={"Content-Type": "application/strategic-merge-patch+json"})
        assert response.status_code == 200, response.text
        new = {p["metadata"]["name"] for p in await ready_pods(api, 2, besides=old)}

        async def old_gone() -> bool:
            return set(by_pod(await web_slices(api))) == new
        await wait_for(old_gone, timeout=30)
        await asyncio.sleep(0.2)  # the watch delivers the last change
    assert new.isdisjoint(old)
    for name in new:
        assert seen[name][0] == (False, False, False) and seen[name][-1] == (True, True, False), seen[name]
    for name in old:
        assert seen[name][0] == (True, True, False), seen[name]
        terminating = [c for c in seen[name] if c[2]]
        assert terminating and all(not ready for ready, _, _ in terminating), seen[name]


async def _has(api: httpx.AsyncClient, names: set[str]) -> bool:
    return set(by_pod(await web_slices(api))) == names


async def test_a_not_ready_pod_is_in_not_ready_addresses_and_publish_not_ready_makes_it_ready(
        api: httpx.AsyncClient, core_v1: kubernetes.client.CoreV1Api,
        kubernetes_client: kubernetes.client.ApiClient) -> None:
    """Read with the official client: the legacy Endpoints lists the ready pod in `addresses` and the
    one whose readiness probe fails in `notReadyAddresses`; with publishNotReadyAddresses both are
    addresses, and the slice calls the unready one ready but not serving."""
    await created(api, PODS, pod("good", "web:1.0"))
    await created(api, PODS, pod("sulky", "web:not-ready"))
    await created(api, SERVICES, service())
    ips: dict[str, str] = {}

    async def subsets() -> Any:
        endpoints = await asyncio.to_thread(core_v1.read_namespaced_endpoints, "web", "default")
        for name in ("good", "sulky"):
            found = (await api.get(f"{PODS}/{name}")).json().get("status", {}).get("podIP")
            if found:
                ips[name] = found
        subset = (endpoints.subsets or [None])[0]
        return subset if subset is not None and subset.addresses and subset.not_ready_addresses else None
    subset = await wait_for(subsets)
    assert [a.ip for a in subset.addresses] == [ips["good"]]  # type: ignore[attr-defined]
    assert [a.ip for a in subset.not_ready_addresses] == [ips["sulky"]]  # type: ignore[attr-defined]
    assert subset.not_ready_addresses[0].target_ref.name == "sulky"  # type: ignore[attr-defined]
    assert [(p.name, p.port, p.protocol) for p in subset.ports] == [("http", 8080, "TCP")]  # type: ignore[attr-defined]

    await api.patch(f"{SERVICES}/web", content=json.dumps({"spec": {"publishNotReadyAddresses": True}}),
                    headers=MERGE)

    async def all_ready() -> Any:
        endpoints = await asyncio.to_thread(core_v1.read_namespaced_endpoints, "web", "default")
        subset = (endpoints.subsets or [None])[0]
        return subset if subset is not None and len(subset.addresses or ()) == 2 else None
    subset = await wait_for(all_ready)
    assert not subset.not_ready_addresses  # type: ignore[attr-defined]
    discovery = kubernetes.client.DiscoveryV1Api(kubernetes_client)
    slices = await asyncio.to_thread(discovery.list_namespaced_endpoint_slice, "default",
                                     label_selector="kubernetes.io/service-name=web")
    conditions = {e.target_ref.name: (e.conditions.ready, e.conditions.serving, e.conditions.terminating)
                  for s in slices.items for e in s.endpoints or ()}
    assert conditions == {"good": (True, True, False), "sulky": (True, False, False)}


async def test_a_pod_that_leaves_the_selector_leaves_the_endpoints_and_the_service_takes_them_along(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """A pod relabelled out of the selector is dropped; a selector change picks the pods again; deleting
    the Service deletes its slices and its Endpoints; a Service without a selector gets neither."""
    await created(api, PODS, pod("a", "web:1.0", role="x"))
    await created(api, PODS, pod("b", "web:1.0", role="y"))
    await created(api, SERVICES, service())
    await wait_for(lambda: _has(api, {"a", "b"}))
    await api.patch(f"{PODS}/b", content=json.dumps({"metadata": {"labels": {"app": "other"}}}), headers=MERGE)
    await wait_for(lambda: _has(api, {"a"}))
    selector = {"spec": {"selector": {"app": None, "role": "y"}}}
    await api.patch(f"{SERVICES}/web", content=json.dumps(selector), headers=MERGE)
    await wait_for(lambda: _has(api, {"b"}))
    await created(api, SERVICES, {"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}})
    assert (await api.delete(f"{SERVICES}/web")).status_code == 200
    await sandbox.controllers.settle()

    async def gone() -> bool:
        return not await web_slices(api) and (await api.get(f"{ENDPOINTS}/web")).status_code == 404
    await wait_for(gone)
    assert (await api.get(f"{ENDPOINTS}/manual")).status_code == 404
    assert not (await api.get(SLICES, params={"labelSelector": "kubernetes.io/service-name=manual"})).json()["items"]


@pytest.mark.parametrize("target", [8080, "http"])
async def test_a_pod_without_the_named_port_gets_no_address_for_it(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox, target: int | str) -> None:
    """A numeric targetPort applies to every pod; a named one only to pods with a container port of
    that name (FindPort): the others are in a slice without ports and not in the Endpoints."""
    unnamed = pod("plain", "web:1.0")
    del unnamed["spec"]["containers"][0]["ports"]
    unnamed["spec"]["containers"][0].pop("readinessProbe")
    await created(api, PODS, unnamed)
    await created(api, SERVICES, service(ports=[{"port": 80, "targetPort": target}]))
    await wait_for(lambda: _has(api, {"plain"}))
    await sandbox.controllers.settle()
    [endpoint_slice] = await web_slices(api)
    endpoints = (await api.get(f"{ENDPOINTS}/web")).json()
    if target == "http":
        assert not endpoint_slice.get("ports") and "subsets" not in endpoints
    else:
        assert endpoint_slice["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
        assert [p["port"] for p in endpoints["subsets"][0]["ports"]] == [8080]


async def test_after_any_pod_churn_the_slices_hold_exactly_the_pods_the_selector_matches(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """Pods created, relabelled in and out of the selector, deleted and re-created under the same
    name, and a second Service over some of them: each Service's slices end with exactly the
    running pods its selector matches (what a list with the selector gives)."""
    rng = random.Random(12)
    await created(api, SERVICES, service())
    await created(api, SERVICES, {**service(selector={"app": "web", "shard": "a"}), "metadata": {"name": "web-a"}})
    live: set[str] = set()
    for _ in range(60):
        name = f"p{rng.randrange(8)}"
        labels = {"app": rng.choice(["web", "other"]), "shard": rng.choice(["a", "b"])}
        if name not in live:
            await created(api, PODS, {**pod(name, "web:1.0"), "metadata": {"name": name, "labels": labels}})
            live.add(name)
        elif rng.random() < 0.3:
            assert (await api.delete(f"{PODS}/{name}", params={"gracePeriodSeconds": "0"})).status_code == 200
            live.discard(name)
        else:
            patch = {"metadata": {"labels": labels}}
            assert (await api.patch(f"{PODS}/{name}", content=json.dumps(patch), headers=MERGE)).status_code == 200
    await sandbox.controllers.settle(timeout=20)
    for name, selector in (("web", "app=web"), ("web-a", "app=web,shard=a")):
        matching = {p["metadata"]["name"] for p in (await api.get(PODS, params={"labelSelector": selector})).json()[
            "items"] if p.get("status", {}).get("podIP")}
        slices = (await api.get(SLICES, params={"labelSelector": f"kubernetes.io/service-name={name}"})).json()
        assert set(by_pod(slices["items"])) == matching, name


async def test_pods_relabelled_while_the_controllers_were_stopped_are_seen_after_they_start(
        api: httpx.AsyncClient, sandbox: runner.RunningSandbox) -> None:
    """As a restarted kube-controller-manager relists: a pod that left the selector while the
    controllers were down is not left in the slices."""
    await created(api, PODS, pod("a", "web:1.0"))
    await created(api, PODS, pod("b", "web:1.0"))
    await created(api, SERVICES, service())
    await wait_for(lambda: _has(api, {"a", "b"}))
    await sandbox.controllers.stop()
    await api.patch(f"{PODS}/b", content=json.dumps({"metadata": {"labels": {"app": "other"}}}), headers=MERGE)
    sandbox.controllers.start()
    await wait_for(lambda: _has(api, {"a"}))
