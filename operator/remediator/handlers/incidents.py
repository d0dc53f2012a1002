"""Kopf handlers for Incidents: thin decorators that hand over to handle_incident."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import kopf
import kubernetes.client

from remediator import GROUP, VERSION
from remediator.engine.guards import APPROVE_ANNOTATION
from remediator.handlers import handle_incident
from remediator.typedefs import Logger


# Any change but status (spec, or an approval annotation) is a reason to look again.
@kopf.on.resume(GROUP, VERSION, "incidents", id="incident-reconcile", backoff=5)
@kopf.on.create(GROUP, VERSION, "incidents", id="incident-reconcile", backoff=5)
@kopf.on.update(GROUP, VERSION, "incidents", id="incident-reconcile", backoff=5)
async def reconcile_incident(namespace: str | None, name: str, uid: str, memo: kopf.Memo, logger: Logger,
                             **_: Any) -> None:
    await handle_incident.reconcile(namespace or "", name, uid, memo.config, memo.action_log, memo.wakeups, logger)


# Waiting steps (rollouts, health checks, backoff, cooldowns, escalation deadlines) are woken up by one
# scheduler task for the whole operator, not a timer per Incident.
@kopf.on.startup(id="incident-wakeups")
async def start_wakeups(memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    # Loading the client's API classes takes about a second: do it now, not on the first incident.
    for api_class in (kubernetes.client.CoreV1Api, kubernetes.client.AppsV1Api,
                      kubernetes.client.CustomObjectsApi, kubernetes.client.PolicyV1Api,
                      kubernetes.client.BatchV1Api):
        logger.debug(f"loaded {api_class.__name__}")
    memo.wakeup_task = asyncio.create_task(handle_incident.run_wakeups(memo.config, memo.action_log, memo.wakeups,
                                                                       logger))


@kopf.on.cleanup(id="incident-wakeups-stop")
async def stop_wakeups(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "wakeup_task", None)
    if task is not None:
        task.cancel()


# Kopf leaves annotations under its storage prefix (remediator.dev/) out of its change detection,
# so approvals are noticed from the raw watch events instead.
@kopf.on.event(GROUP, VERSION, "incidents", id="incident-approval")
def notice_approval(namespace: str | None, name: str, uid: str, annotations: kopf.Annotations, memo: kopf.Memo,
                    **_: Any) -> None:
    memo.wakeups.remember(uid, namespace or "", name)
    memo.wakeups.notice_approval(uid, annotations.get(APPROVE_ANNOTATION, ""), datetime.datetime.now(datetime.UTC))


@kopf.on.delete(GROUP, VERSION, "incidents", id="incident-release", backoff=5)
async def release_incident(body: kopf.Body, uid: str, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    await handle_incident.release(body, logger)
    memo.wakeups.forget(uid)
