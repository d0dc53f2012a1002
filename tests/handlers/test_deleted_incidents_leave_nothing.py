"""Deleted Incidents leave nothing behind in the operator's memory.

2,000 Incidents go through the real handlers (Kopf and the operator's handlers in this process, so
their state can be inspected, against the sandbox): half are deleted as soon as they are created
(often while their reconciliation runs), a quarter once they are Resolved, a quarter while they wait
for an approval. Then the operator's state is looked at directly, not its RSS: the incident queue
(copies, versions, wakeups, running reconciliations), the metrics' per-Incident figures, the Events
queued for posting and those remembered to count repeats, Kopf's per-object memories and its per-object worker tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import kopf
import pytest
from kopf._core.reactor import inventory

from remediator import config, kube, metrics, operator_main
from remediator.actions import events
from remediator.engine import guards
from remediator.handlers import incident_figures, incident_queue
from remediator.sandbox import runner

INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
ROUNDS, PER_ROUND = 10, 200
# Requests in flight from the test's client at once: the API server is the same process as the operator.
CONCURRENCY = 10
# Kopf ends an object's worker once it has had no event for operator_main.WORKER_IDLE_SECONDS; the
# deletions of the last round still take their turn for the lock releases.
SETTLE_SECONDS = 60


def deployment(index: int) -> dict[str, Any]:
    labels = {"app": f"web-{index}"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"web-{index}", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}


def incident(name: str, index: int, approval: bool) -> dict[str, Any]:
    """One step that scales the Incident's own Deployment to 2 replicas (a lock claim, the scale, the release;
    after the first round the scale finds them there), at once or after an approval."""
    step = {"name": "scale", "scale": {"target": {"kind": "Deployment", "name": f"web-{index}"}, "replicas": 2},
            "requiresApproval": approval}
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": name},
            "spec": {"severity": "P2", "summary": f"web-{index} saturated", "steps": [step]}}


# What each Incident of a round is left to reach before it is deleted, by its index modulo 4: None is
# deleted as soon as it is created (mostly while its first reconciliation runs).
FATES: tuple[str | None, ...] = ("Resolved", None, None, "AwaitingApproval")


@contextlib.asynccontextmanager
async def operator_in_process(kubeconfig: pathlib.Path, memo: kopf.Memo,
                              memories: Any) -> AsyncIterator[None]:
    """The operator's Kopf handlers (the default registry) running in this event loop with `memo`."""
    from remediator import handlers  # noqa: F401  (registers the handlers)

    kube.api_client.cache_clear()  # one client per process; this one is for this sandbox
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(settings=operator_main.operator_settings(), standalone=True,
                                             namespaces=["default"], memo=memo, memories=memories,
                                             stop_flag=stop, ready_flag=ready))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        kube.api_client.cache_clear()


async def settled(condition: Callable[[], bool], seconds: float) -> None:
    """Wait up to `seconds` for `condition()`; the assertions after it say what is left when it never holds."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)


async def phases(api: httpx.AsyncClient) -> dict[str, str | None]:
    items = (await api.get(INCIDENTS)).json()["items"]
    return {item["metadata"]["name"]: (item.get("status") or {}).get("phase") for item in items}


async def in_parallel(calls: list[Callable[[], Any]]) -> list[httpx.Response]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Callable[[], Any]) -> httpx.Response:
        async with gate:
            try:
                response: httpx.Response = await call()
            except httpx.TransportError:
                # Seen twice on a heavily loaded machine: a connection dropped mid-request (the sandbox
                # serves this process's operator too). Once more; a repeated create answers 409.
                response = await call()
            return response

    return list(await asyncio.gather(*(one(call) for call in calls)))


@pytest.mark.timeout(900)
async def test_two_thousand_deleted_incidents_leave_nothing_in_the_operators_state(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient, kubeconfig: pathlib.Path) -> None:
    for response in await in_parallel([lambda i=i: api.post(DEPLOYMENTS, json=deployment(i))
                                       for i in range(PER_ROUND)]):
        assert response.status_code == 201, response.text
    queue = incident_queue.IncidentQueue(max_running=8)  # some wait their turn, and are deleted while they wait
    # No cooldown: each round scales the same Deployments again.
    operator_config = config.OperatorConfig(kubeconfig=kubeconfig, cooldown=datetime.timedelta(0))
    figures = incident_figures.IncidentFigures(metrics.OperatorMetrics(), datetime.datetime.now(datetime.UTC))
    memo = kopf.Memo(config=operator_config, action_log=guards.ActionLog(), incidents=queue, figures=figures)
    memories = inventory.ResourceMemories()  # Kopf keeps a memory per object it has seen
    uids: set[str] = set()
    resolved = parked = 0
    async with operator_in_process(kubeconfig, memo, memories):
        for round_ in range(ROUNDS):
            names = [f"inc-{round_}-{i}" for i in range(PER_ROUND)]
            fates = {n: FATES[i % len(FATES)] for i, n in enumerate(names)}
            bodies = [incident(n, i, fates[n] == "AwaitingApproval") for i, n in enumerate(names)]
            created = await in_parallel([lambda body=body: api.post(INCIDENTS, json=body) for body in bodies])
            assert all(r.status_code in (201, 409) for r in created), [r.text for r in created if r.status_code >= 400]
            listed = (await api.get(INCIDENTS)).json()["items"]
            assert sorted(item["metadata"]["name"] for item in listed) == sorted(names)
            uids.update(item["metadata"]["uid"] for item in listed)
            await in_parallel([lambda n=n: api.delete(f"{INCIDENTS}/{n}") for n in names if fates[n] is None])
            kept = {n: fate for n, fate in fates.items() if fate is not None}
            seen: dict[str, str | None] = {}
            for _ in range(600):
                seen.update(await phases(api))
                if all(seen.get(n) == fate for n, fate in kept.items()):
                    break
                await asyncio.sleep(0.5)  # a LIST of the round's Incidents costs the same loop's time
            unreached = {n: seen.get(n) for n, fate in kept.items() if seen.get(n) != fate}
            assert unreached == {}, f"round {round_}: not where they should be"
            parked += sum(fate == "AwaitingApproval" for fate in kept.values())
            resolved += sum(fate == "Resolved" for fate in kept.values())
            await in_parallel([lambda n=n: api.delete(f"{INCIDENTS}/{n}") for n in kept])
        assert await phases(api) == {}

        def worker_tasks() -> list[str]:
            return [task.get_name() for task in asyncio.all_tasks() if any(uid in task.get_name() for uid in uids)]

        def memorised() -> list[Any]:
            return list(memories.iter_all_memories())

        await settled(lambda: not queue.holding() and not figures.holding() and not events.pending()
                      and not uids & events.remembered() and not memorised() and not worker_tasks(), SETTLE_SECONDS)
        held, counted, remembered, workers = queue.holding(), figures.holding(), memorised(), worker_tasks()
        posting, recent_events = events.pending(), uids & events.remembered()

    assert len(uids) == ROUNDS * PER_ROUND and resolved == parked == ROUNDS * PER_ROUND // 4
    assert held == set(), f"the incident queue still holds {len(held)} deleted Incidents"
    assert counted == set(), f"the metrics' figures still hold {len(counted)} deleted Incidents"
    assert posting == 0, f"Events of {posting} Incidents are still queued for posting"
    assert recent_events == set(), f"Events of {len(recent_events)} deleted Incidents are still remembered"
    assert remembered == [], f"Kopf still remembers {len(remembered)} deleted objects"
    assert workers == [], f"{len(workers)} per-object tasks are left, e.g. {workers[:3]}"
