"""Kopf handlers for Incidents: thin decorators that hand over to handle_incident.

Incidents are driven by the raw watch: Kopf adds no finalizer and writes no annotations of its own
to them (each would cost an API write per incident). The operator's state lives in the status;
deletion is never blocked, and the target locks are released when the deletion is seen.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import kopf

from remediator import GROUP, VERSION
from remediator.actions import events
from remediator.api import severities
from remediator.handlers import handle_incident, incident_queue
from remediator.handlers.incident_figures import IncidentFigures
from remediator.typedefs import Logger


@kopf.on.event(GROUP, VERSION, "incidents", id="incident-watch")
async def incident_changed(event: kopf.RawEvent, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    body: Any = event["object"]
    if not memo.config.scope.owns(body["metadata"]["namespace"]):
        return  # another shard's: nothing is kept or written for it here
    uid = body["metadata"]["uid"]
    if event["type"] == "DELETED":
        # Handed over, not awaited: Kopf lets go of the body and its worker at once (a storm deletes
        # a thousand at a time), the queue keeps only what the release needs.
        memo.incidents.deleted(uid, functools.partial(_let_go, memo.figures, uid,
                                                      handle_incident.release_of(body), logger))
        return
    if body["metadata"].get("deletionTimestamp"):
        return  # another controller's finalizer holds it; the DELETED event releases the locks
    memo.figures.seen(body)
    if memo.incidents.seen(body):
        memo.incidents.kick(uid, memo.reconcile, _priority(body))


async def _let_go(figures: IncidentFigures, uid: str, release: handle_incident.Release, logger: Logger) -> None:
    """Once no reconciliation of the deleted Incident runs (one may still note it as rate-limited)."""
    figures.gone(uid)
    await handle_incident.release(release, logger)


def _priority(body: Any) -> int:
    """The Incident's place in the line for a reconcile slot: P0 first; an invalid severity last."""
    try:
        return SEVERITY_RANKS[severities.normalise_severity((body.get("spec") or {}).get("severity"))]
    except ValueError:
        return incident_queue.LAST


SEVERITY_RANKS = {severity: rank for rank, severity in enumerate(severities.Severity)}


# Waiting steps (rollouts, health checks, backoff, cooldowns, escalation deadlines) are woken up by one
# scheduler task for the whole operator, not a timer per Incident.
@kopf.on.startup(id="incident-wakeups")
async def start_wakeups(memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    memo.reconcile = functools.partial(handle_incident.reconcile, queue=memo.incidents, config=memo.config,
                                       action_log=memo.action_log, logger=logging.getLogger("remediator.incidents"),
                                       figures=memo.figures)
    # Computed when scraped: the actions the rate limit still allows now.
    memo.figures.metrics.rate_limit_tokens.set_function(
        lambda: memo.action_log.remaining(memo.config.rate_limit(), handle_incident.now()))
    memo.wakeup_task = asyncio.create_task(handle_incident.run_wakeups(memo.incidents, memo.reconcile))


# On a graceful stop, how long the Events still being posted in the background may take.
EVENTS_FLUSH_SECONDS = 2.0


@kopf.on.cleanup(id="incident-wakeups-stop")
async def stop_wakeups(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "wakeup_task", None)
    if task is not None:
        task.cancel()
    memo.incidents.cancel_all()
    await events.flush(EVENTS_FLUSH_SECONDS)
