"""`remediator_rate_limit_queued` counts the Incidents whose next step the operator-wide rate limit holds back.

Real reconciliations (the handler, the engine, the actions) against the sandbox, one Incident after the
other, so the count after each one is known exactly: with a limit of one action an hour, the first of four
Incidents scales its Deployment and the other three wait; once the limit allows more, each one that acts
leaves the count.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from remediator import config, kube, metrics
from remediator.actions import events
from remediator.engine import guards
from remediator.handlers import handle_incident, incident_figures, incident_queue

INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
COUNT = 4
LOGGER = logging.getLogger(__name__)


def deployment(index: int) -> dict[str, Any]:
    labels = {"app": f"web-{index}"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"web-{index}", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}


def incident(index: int) -> dict[str, Any]:
    step = {"name": "up", "scale": {"target": {"kind": "Deployment", "name": f"web-{index}"}, "replicas": 2}}
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": f"inc-{index}"},
            "spec": {"severity": "P2", "summary": f"web-{index} saturated", "steps": [step]}}


@pytest.fixture()
def configured(kubeconfig: pathlib.Path) -> Iterator[None]:
    kube.configure(kubeconfig)
    kube.api_client.cache_clear()  # one client per process; this one is for this test's sandbox
    yield
    kube.api_client.cache_clear()


async def test_the_gauge_counts_exactly_the_incidents_the_rate_limit_holds_back(
        api: httpx.AsyncClient, kubeconfig: pathlib.Path, configured: None) -> None:
    uids = []
    for index in range(COUNT):
        assert (await api.post(DEPLOYMENTS, json=deployment(index))).status_code == 201
        created = await api.post(INCIDENTS, json=incident(index))
        assert created.status_code == 201, created.text
        uids.append(created.json()["metadata"]["uid"])
    registry = metrics.OperatorMetrics()
    figures = incident_figures.IncidentFigures(registry, datetime.datetime.now(datetime.UTC))
    queue = incident_queue.IncidentQueue()
    action_log = guards.ActionLog()

    def queued() -> float | None:
        return registry.registry.get_sample_value("remediator_rate_limit_queued")

    async def reconcile(index: int, actions: int) -> None:
        body = (await api.get(f"{INCIDENTS}/inc-{index}")).json()
        queue.read(body)
        limited = config.OperatorConfig(kubeconfig=kubeconfig, cooldown=datetime.timedelta(0),
                                        rate_limit_actions=actions, rate_limit_window=datetime.timedelta(hours=1))
        await handle_incident.reconcile(uids[index], queue, limited, action_log, LOGGER, figures)

    async def replicas(index: int) -> int:
        return int((await api.get(f"{DEPLOYMENTS}/web-{index}")).json()["spec"]["replicas"])

    counts = []
    for index in range(COUNT):
        await reconcile(index, actions=1)
        counts.append(queued())
    assert counts == [0, 1, 2, 3]
    assert [await replicas(index) for index in range(COUNT)] == [2, 1, 1, 1]
    for index in range(1, COUNT):  # the limit now allows them: each acts and leaves the count
        await reconcile(index, actions=COUNT)
        counts.append(queued())
    assert counts[COUNT:] == [2, 1, 0]
    assert [await replicas(index) for index in range(COUNT)] == [2, 2, 2, 2]
    for _ in range(100):  # the Events are posted in the background: let them finish before the sandbox stops
        if not events.pending():
            break
        await asyncio.sleep(0.05)
