"""An Incident deleted while the watch could not see it (found missing from a new listing after 410 Gone):
the operator lets go of it as of a seen deletion, says so in its log, and leaves another shard's alone."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import kopf
import pytest

from remediator import config, metrics
from remediator.engine import guards, shards
from remediator.handlers import incident_figures, incident_queue, incidents


def body(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": "7",
                         "creationTimestamp": "2026-11-30T10:00:00Z"},
            "spec": {"severity": "P3", "summary": f"{name} is slow", "steps": []}}


def memo_with(scope: shards.Scope, *seen: dict[str, Any]) -> kopf.Memo:
    figures = incident_figures.IncidentFigures(metrics.OperatorMetrics(), datetime.datetime.now(datetime.UTC))
    memo = kopf.Memo(config=config.OperatorConfig(scope=scope), action_log=guards.ActionLog(),
                     incidents=incident_queue.IncidentQueue(), figures=figures)
    for each in seen:
        memo.incidents.seen(each)
        memo.figures.seen(each)
    return memo


async def test_a_vanished_incident_is_let_go_of_and_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    memo = memo_with(shards.Scope(), body("slow", "default"))
    assert memo.incidents.holding() == {"uid-slow"}
    with caplog.at_level(logging.INFO):
        incidents.incident_vanished("uid-slow", "default", memo, logging.getLogger("remediator.incidents"))
        for _ in range(100):
            if not memo.incidents.holding():
                break
            await asyncio.sleep(0.01)
    assert memo.incidents.holding() == set()
    assert memo.figures.holding() == set()
    assert "incident default/slow: deleted while the watch could not see it" in caplog.messages


async def test_another_shards_vanished_incident_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    other = next(shards.Shard(index, 2) for index in range(2) if not shards.Shard(index, 2).owns("default"))
    memo = memo_with(shards.Scope(shard=other))
    with caplog.at_level(logging.INFO):
        incidents.incident_vanished("uid-slow", "default", memo, logging.getLogger("remediator.incidents"))
        await asyncio.sleep(0.05)
    assert not any("deleted while" in message for message in caplog.messages)
