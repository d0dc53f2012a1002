"""--max-concurrent-reconciles: a storm is worked off a few Incidents at a time, and every one resolves.

The real handlers run in this process against the sandbox with the limit at 2. What a user sees is
watched on the API server: a one-step scale claims its Deployment (the lock annotation), scales it,
and releases it; with at most 2 Incidents reconciled at once, at most 2 Deployments are ever locked
at the same moment, however many Incidents were created together.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib

import httpx
import kopf
import pytest
from kopf._core.reactor import inventory
from tests.handlers.test_deleted_incidents_leave_nothing import (
    DEPLOYMENTS,
    INCIDENTS,
    deployment,
    in_parallel,
    incident,
    operator_in_process,
    phases,
)

from remediator import config, metrics
from remediator.engine import guards
from remediator.handlers import incident_figures, incident_queue
from remediator.sandbox import runner

COUNT = 24
LIMIT = 2


async def most_locked_at_once(api: httpx.AsyncClient, since: str, most: list[int]) -> None:
    """Follow the Deployments' watch; keep in `most[0]` the most that carried the lock at the same moment."""
    locked: set[str] = set()
    async with api.stream("GET", DEPLOYMENTS, params={"watch": "true", "resourceVersion": since},
                          timeout=httpx.Timeout(10, read=None)) as stream:
        async for line in stream.aiter_lines():
            if not line:
                continue
            obj = json.loads(line)["object"]
            name = obj["metadata"]["name"]
            if guards.LOCK_ANNOTATION in (obj["metadata"].get("annotations") or {}):
                locked.add(name)
            else:
                locked.discard(name)
            most[0] = max(most[0], len(locked))


@pytest.mark.timeout(300)
async def test_a_burst_is_worked_off_two_at_a_time_and_every_incident_resolves(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient, kubeconfig: pathlib.Path) -> None:
    for response in await in_parallel([lambda i=i: api.post(DEPLOYMENTS, json=deployment(i)) for i in range(COUNT)]):
        assert response.status_code == 201, response.text
    since = (await api.get(DEPLOYMENTS)).json()["metadata"]["resourceVersion"]
    queue = incident_queue.IncidentQueue(max_running=LIMIT)
    operator_config = config.OperatorConfig(kubeconfig=kubeconfig, max_concurrent_reconciles=LIMIT)
    figures = incident_figures.IncidentFigures(metrics.OperatorMetrics(), datetime.datetime.now(datetime.UTC))
    memo = kopf.Memo(config=operator_config, action_log=guards.ActionLog(), incidents=queue, figures=figures)
    most = [0]
    watching = asyncio.create_task(most_locked_at_once(api, since, most))
    names = [f"inc-{i}" for i in range(COUNT)]
    try:
        async with operator_in_process(kubeconfig, memo, inventory.ResourceMemories()):
            created = await asyncio.gather(*(api.post(INCIDENTS, json=incident(name, i, approval=False))
                                             for i, name in enumerate(names)))
            assert all(r.status_code == 201 for r in created), [r.text for r in created if r.status_code != 201]
            seen: dict[str, str | None] = {}
            for _ in range(240):
                seen = await phases(api)
                if all(phase == "Resolved" for phase in seen.values()):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.5)  # the last releases' watch events
    finally:
        watching.cancel()
    assert seen == {name: "Resolved" for name in names}
    assert most[0] == LIMIT, f"{most[0]} Deployments were locked at once with the limit at {LIMIT}"


async def lock_order(api: httpx.AsyncClient, since: str, order: list[str]) -> None:
    """Follow the Deployments' watch; append each Deployment's name the first time it carries the lock."""
    async with api.stream("GET", DEPLOYMENTS, params={"watch": "true", "resourceVersion": since},
                          timeout=httpx.Timeout(10, read=None)) as stream:
        async for line in stream.aiter_lines():
            obj = json.loads(line)["object"] if line else {}
            name = obj.get("metadata", {}).get("name")
            if guards.LOCK_ANNOTATION in (obj.get("metadata", {}).get("annotations") or {}) and name not in order:
                order.append(name)


# Enough that arriving last and coming next are far apart, whatever the watches' lag.
P3_COUNT = 30


@pytest.mark.timeout(300)
async def test_a_p0_arriving_in_a_storm_of_p3s_takes_the_next_free_slot(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient, kubeconfig: pathlib.Path) -> None:
    """With one slot, thirty P3s are created at once and, once the first of them acts, a P0: the P0 acts
    among the first few (the P3s that ran while its watch event travelled), not last as it came."""
    for response in await in_parallel([lambda i=i: api.post(DEPLOYMENTS, json=deployment(i))
                                       for i in range(P3_COUNT + 1)]):
        assert response.status_code == 201, response.text
    since = (await api.get(DEPLOYMENTS)).json()["metadata"]["resourceVersion"]
    queue = incident_queue.IncidentQueue(max_running=1)
    operator_config = config.OperatorConfig(kubeconfig=kubeconfig, max_concurrent_reconciles=1)
    figures = incident_figures.IncidentFigures(metrics.OperatorMetrics(), datetime.datetime.now(datetime.UTC))
    memo = kopf.Memo(config=operator_config, action_log=guards.ActionLog(), incidents=queue, figures=figures)
    order: list[str] = []
    watching = asyncio.create_task(lock_order(api, since, order))
    try:
        async with operator_in_process(kubeconfig, memo, inventory.ResourceMemories()):
            storm = [incident(f"p3-{i}", i, approval=False) for i in range(P3_COUNT)]
            created = await asyncio.gather(*(api.post(INCIDENTS, json=body) for body in storm))
            assert all(r.status_code == 201 for r in created), [r.text for r in created if r.status_code != 201]
            for _ in range(60):  # the storm is being worked off: the P0 comes into a line, not a first list
                if order:
                    break
                await asyncio.sleep(0.1)
            urgent = incident("z-p0", P3_COUNT, approval=False)  # last by name, as by arrival
            urgent["spec"]["severity"] = "P0"
            assert (await api.post(INCIDENTS, json=urgent)).status_code == 201
            for _ in range(240):
                if len(order) == P3_COUNT + 1:
                    break
                await asyncio.sleep(0.5)
    finally:
        watching.cancel()
    assert sorted(order) == sorted(f"web-{i}" for i in range(P3_COUNT + 1))
    place = order.index(f"web-{P3_COUNT}") + 1
    assert place <= P3_COUNT // 3, f"the P0's Deployment was locked in place {place}: {order}"
