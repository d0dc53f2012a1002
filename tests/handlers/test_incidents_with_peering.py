"""With `--peering`, Kopf watches Incidents (so that they pause with the rest while a peer of higher priority
runs, which the operator's own watch would not know of), and the operator does not watch them too."""

from __future__ import annotations

import asyncio
import datetime
import pathlib

import httpx
import kopf
from tests.handlers.test_deleted_incidents_leave_nothing import INCIDENTS

from remediator import config, kube, metrics, operator_main
from remediator.engine import guards
from remediator.handlers import incident_figures, incident_queue, incidents, login
from remediator.sandbox import runner


async def test_with_peering_kopf_delivers_incidents_and_the_operator_does_not_watch_them_too(
        sandbox: runner.RunningSandbox, api: httpx.AsyncClient, kubeconfig: pathlib.Path) -> None:
    registry = kopf.OperatorRegistry()
    incidents.watch_through_kopf(registry)
    kopf.on.login(registry=registry)(login.login)
    kopf.on.startup(registry=registry)(incidents.start_wakeups)
    kopf.on.cleanup(registry=registry)(incidents.stop_wakeups)
    operator_config = config.OperatorConfig(kubeconfig=kubeconfig, cooldown=datetime.timedelta(0))
    figures = incident_figures.IncidentFigures(metrics.OperatorMetrics(), datetime.datetime.now(datetime.UTC))
    memo = kopf.Memo(config=operator_config, action_log=guards.ActionLog(), incidents=incident_queue.IncidentQueue(),
                     figures=figures, served_namespaces=("default",), incidents_by_kopf=True)
    kube.api_client.cache_clear()
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(registry=registry, settings=operator_main.operator_settings(),
                                             standalone=True, namespaces=["default"], memo=memo,
                                             stop_flag=stop, ready_flag=ready))
    phase = None
    try:
        await asyncio.wait_for(ready.wait(), 30)
        body = {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": "slow"},
                "spec": {"severity": "P3", "summary": "checkout is slow", "steps": []}}
        assert (await api.post(INCIDENTS, json=body)).status_code == 201
        for _ in range(200):
            phase = ((await api.get(f"{INCIDENTS}/slow")).json().get("status") or {}).get("phase")
            if phase is not None:
                break
            await asyncio.sleep(0.1)
        own_watches = getattr(memo, "watch_tasks", [])
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        kube.api_client.cache_clear()
    assert phase is not None, "Kopf's watch did not hand the Incident over"
    assert own_watches == [], "the operator watched Incidents as well as Kopf"
