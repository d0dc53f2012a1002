"""Open but quiet Incidents hold no task and no Kopf state, and their next change is still handled.

Kopf ran a worker task per object (its event queue, the last event's body) and kept a memory per object;
in a storm every Incident held both at once, which set the operator's memory peak. The operator now
watches Incidents itself (handlers/incident_watch): Kopf knows none of them. Here Incidents wait for an
approval, so they stay open with no event; once they are quiet no task is theirs, and when the approval
comes (a new event) every one resolves.
"""

from __future__ import annotations

import asyncio
import datetime
import pathlib

import httpx
import kopf
import pytest
from kopf._core.reactor import inventory
from tests.handlers import test_deleted_incidents_leave_nothing as leave_nothing
from tests.handlers.test_deleted_incidents_leave_nothing import INCIDENTS, in_parallel

from remediator import config, metrics
from remediator.engine import guards
from remediator.handlers import incident_figures, incident_queue
from remediator.sandbox import runner

COUNT = 20
# Well above Kopf's worker idle timeout in the operator (0.2 s), were Kopf to watch Incidents again: real
# seconds after the Incidents' last event (their AwaitingApproval status write).
QUIET_SECONDS = 3.0


async def until_phases(api: httpx.AsyncClient, names: list[str], phase: str) -> dict[str, str | None]:
    seen: dict[str, str | None] = {}
    for _ in range(240):
        seen = await leave_nothing.phases(api)
        if all(seen.get(name) == phase for name in names):
            break
        await asyncio.sleep(0.25)
    return seen


@pytest.mark.timeout(180)
async def test_quiet_open_incidents_hold_no_kopf_worker_and_their_next_change_is_handled(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient, kubeconfig: pathlib.Path) -> None:
    deployments = [lambda i=i: api.post(leave_nothing.DEPLOYMENTS, json=leave_nothing.deployment(i))
                   for i in range(COUNT)]
    for response in await in_parallel(deployments):
        assert response.status_code == 201, response.text
    operator_config = config.OperatorConfig(kubeconfig=kubeconfig, cooldown=datetime.timedelta(0))
    figures = incident_figures.IncidentFigures(metrics.OperatorMetrics(), datetime.datetime.now(datetime.UTC))
    memo = kopf.Memo(config=operator_config, action_log=guards.ActionLog(), incidents=incident_queue.IncidentQueue(),
                     figures=figures)
    memories = inventory.ResourceMemories()
    names = [f"inc-{i}" for i in range(COUNT)]
    async with leave_nothing.operator_in_process(kubeconfig, memo, memories):
        created = await in_parallel([lambda i=i, n=n: api.post(INCIDENTS, json=leave_nothing.incident(n, i, True))
                                     for i, n in enumerate(names)])
        assert all(r.status_code == 201 for r in created), [r.text for r in created if r.status_code != 201]
        waiting = await until_phases(api, names, "AwaitingApproval")
        assert set(waiting.values()) == {"AwaitingApproval"}, waiting
        uids = {item["metadata"]["uid"] for item in (await api.get(INCIDENTS)).json()["items"]}

        def workers() -> list[str]:
            return [task.get_name() for task in asyncio.all_tasks() if any(uid in task.get_name() for uid in uids)]

        await leave_nothing.settled(lambda: not workers(), QUIET_SECONDS)
        left, remembered = workers(), len(list(memories.iter_all_memories()))

        approval = {"metadata": {"annotations": {"remediator.dev/approve": "scale",
                                                 "remediator.dev/approved-by": "oncall@example.com"}}}
        await in_parallel([lambda n=n: api.patch(f"{INCIDENTS}/{n}", json=approval,
                                                 headers={"Content-Type": "application/merge-patch+json"})
                           for n in names])
        done = await until_phases(api, names, "Resolved")

    assert left == [], f"{len(left)} per-object tasks are left for quiet Incidents, e.g. {left[:3]}"
    assert remembered == 0, "Kopf keeps state for Incidents, which the operator watches itself"
    assert set(done.values()) == {"Resolved"}, done
