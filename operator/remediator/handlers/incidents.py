"""The operator's handlers for Incidents: the leader's own watch of them, and thin Kopf activities around it.

Incidents are driven by that watch (handlers/incident_watch), not by Kopf's: Kopf adds no finalizer and
writes no annotations to them (each would cost an API write per incident), and keeps no per-object state
for them. The operator's state lives in the status; deletion is never blocked, and the target locks are
released when the deletion is seen.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import kopf

from remediator import GROUP, VERSION, kube
from remediator.actions import events
from remediator.api import severities
from remediator.handlers import handle_incident, incident_queue, incident_watch
from remediator.handlers.incident_figures import IncidentFigures
from remediator.typedefs import Logger


def incident_changed(kind: str, body: dict[str, Any], memo: kopf.Memo, logger: Logger) -> None:
    """One event of the watch: ADDED, MODIFIED or DELETED."""
    if not memo.config.scope.owns(body["metadata"]["namespace"]):
        return  # another shard's: nothing is kept or written for it here
    uid = body["metadata"]["uid"]
    if kind == "DELETED":
        logger = _about(logger, body["metadata"]["namespace"], body["metadata"]["name"])
        # Handed over, not awaited: a storm deletes a thousand at a time, and the queue keeps only what
        # each release needs.
        memo.incidents.deleted(uid, functools.partial(_let_go, memo.figures, uid,
                                                      handle_incident.release_of(body), logger))
        return
    if body["metadata"].get("deletionTimestamp"):
        return  # another controller's finalizer holds it; the DELETED event releases the locks
    memo.figures.seen(body)
    if memo.incidents.seen(body):
        memo.incidents.kick(uid, memo.reconcile, _priority(body))


async def _kopf_event(event: kopf.RawEvent, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    body: Any = event["object"]
    incident_changed(event["type"] or "ADDED", body, memo, logger)  # Kopf's initial listing has no type


def watch_through_kopf(registry: kopf.OperatorRegistry) -> None:
    """With `--peering`: Kopf watches Incidents, so that they pause with everything else while a peer of
    higher priority runs (the operator's own watch knows nothing of Kopf's peering), at Kopf's cost per
    object. The memo's `incidents_by_kopf` must then be true, so that the operator does not watch too."""
    kopf.on.event(GROUP, VERSION, "incidents", id="incident-watch", registry=registry)(_kopf_event)


def incident_vanished(uid: str, namespace: str, memo: kopf.Memo, logger: Logger) -> None:
    """An Incident deleted while the watch could not see it: let go of it. Its locks are released from the
    newest copy kept, if any; otherwise the next incident on each target finds the holder gone and takes
    the lock over (README)."""
    if not memo.config.scope.owns(namespace):
        return  # another shard's: nothing was kept for it here
    names = memo.incidents.names(uid)
    logger = _about(logger, *(names or (namespace, uid)))
    logger.info("deleted while the watch could not see it")
    body = memo.incidents.body(uid)
    release = handle_incident.release_of(body) if body is not None else handle_incident.Release(namespace, None)
    memo.incidents.deleted(uid, functools.partial(_let_go, memo.figures, uid, release, logger))


async def _let_go(figures: IncidentFigures, uid: str, release: handle_incident.Release, logger: Logger) -> None:
    """Once no reconciliation of the deleted Incident runs (one may still note it as rate-limited)."""
    figures.gone(uid)
    events.forget(uid)
    await handle_incident.release(release, logger)


def _about(logger: Logger, namespace: str, name: str) -> Logger:
    """`logger`, its lines naming the Incident as the reconciliation's own lines do."""
    return _Named(logger, f"incident {namespace}/{name}: ")


class _Named(logging.LoggerAdapter[Any]):
    def __init__(self, logger: Logger, prefix: str) -> None:
        super().__init__(logger, {})
        self.prefix = prefix

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{self.prefix}{msg}", kwargs


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
    await _start_watches(memo)


async def _start_watches(memo: kopf.Memo) -> None:
    """The leader's watches of Incidents in the served namespaces (`memo.served_namespaces`: the
    --namespace patterns; none, or absent, for every namespace)."""
    if getattr(memo, "incidents_by_kopf", False):
        return
    patterns: tuple[str, ...] = tuple(getattr(memo, "served_namespaces", ()))
    memo.watch_api = await kube.async_client(memo.config.kubeconfig)
    watch_logger = logging.getLogger("remediator.incidents")
    memo.watch_tasks = [
        asyncio.create_task(incident_watch.IncidentWatch(
            memo.watch_api, namespace, patterns,
            deliver=functools.partial(incident_changed, memo=memo, logger=watch_logger),
            vanished=functools.partial(incident_vanished, memo=memo, logger=watch_logger)).run())
        for namespace in incident_watch.watched_namespaces(patterns)]


# On a graceful stop, how long the Events still being posted in the background may take.
EVENTS_FLUSH_SECONDS = 2.0


@kopf.on.cleanup(id="incident-wakeups-stop")
async def stop_wakeups(memo: kopf.Memo, **_: Any) -> None:
    tasks = [getattr(memo, "wakeup_task", None), *getattr(memo, "watch_tasks", ())]
    for task in tasks:
        if task is not None:
            task.cancel()
    await asyncio.gather(*(task for task in tasks if task is not None), return_exceptions=True)
    watch_api = getattr(memo, "watch_api", None)
    if watch_api is not None:
        await watch_api.close()
    memo.incidents.cancel_all()
    await events.flush(EVENTS_FLUSH_SECONDS)
