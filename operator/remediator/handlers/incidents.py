"""Kopf handlers for Incidents: thin decorators that hand over to handle_incident."""

from __future__ import annotations

import datetime
from typing import Any

import kopf

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


# Waiting steps (rollouts, health checks, backoff, cooldowns, escalation deadlines) are woken up here.
@kopf.timer(GROUP, VERSION, "incidents", id="incident-wakeup", interval=1.0, initial_delay=1.0)
async def wake_incident(namespace: str | None, name: str, uid: str, memo: kopf.Memo, logger: Logger,
                        **_: Any) -> None:
    if memo.wakeups.due(uid, datetime.datetime.now(datetime.UTC)):
        await handle_incident.reconcile(namespace or "", name, uid, memo.config, memo.action_log, memo.wakeups, logger)


# Kopf leaves annotations under its storage prefix (remediator.dev/) out of its change detection,
# so approvals are noticed from the raw watch events instead.
@kopf.on.event(GROUP, VERSION, "incidents", id="incident-approval")
def notice_approval(uid: str, annotations: kopf.Annotations, memo: kopf.Memo, **_: Any) -> None:
    memo.wakeups.notice_approval(uid, annotations.get(APPROVE_ANNOTATION, ""), datetime.datetime.now(datetime.UTC))


@kopf.on.delete(GROUP, VERSION, "incidents", id="incident-release", backoff=5)
async def release_incident(body: kopf.Body, uid: str, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    await handle_incident.release(body, logger)
    memo.wakeups.forget(uid)
