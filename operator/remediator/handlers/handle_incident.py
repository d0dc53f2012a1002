"""One reconciliation of an Incident: ask the engine, record the status, carry out the intent, repeat."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import faults, kube
from remediator.actions import (
    events,
    fences,
    retries,
    rollouts,
    statuses,
    workloads,
)
from remediator.config import OperatorConfig
from remediator.engine import guards, incidents, intents
from remediator.handlers import intent_table
from remediator.handlers.incident_figures import IncidentFigures
from remediator.handlers.incident_queue import IncidentQueue, Run
from remediator.typedefs import Logger

# Enough for every step of a long incident; a loop beyond it is a bug, not progress.
MAX_MOVES = 1000
# Status writes are conditional on the version decided on; after this many conflicts in a row, back off.
MAX_CONFLICTS = 5
MIN_REQUEUE = datetime.timedelta(seconds=0.5)
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (*retries.API_ERRORS, rollouts.TransientApiError)
RETRY_AFTER_ERROR = datetime.timedelta(seconds=1)
RETRY_AFTER_BUG = datetime.timedelta(seconds=5)


class _Conflict(Exception):
    """The Incident changed since it was read: decide again on a fresh copy."""


class _Gone(Exception):
    """The Incident was deleted."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def view_of(body: Mapping[str, Any]) -> incidents.Incident:
    meta = body["metadata"]
    created = datetime.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    return incidents.Incident(uid=meta["uid"], name=meta["name"], namespace=meta["namespace"],
                              generation=int(meta.get("generation") or 1), created_at=created,
                              spec=dict(body.get("spec") or {}), status=dict(body.get("status") or {}),
                              annotations=dict(meta.get("annotations") or {}))


async def reconcile(uid: str, queue: IncidentQueue, config: OperatorConfig, action_log: guards.ActionLog,
                    logger: Logger, figures: IncidentFigures | None = None) -> None:
    """Advance the Incident as far as it can go now; schedule a wakeup when it waits for time to pass.

    Works on the queue's newest copy of the Incident (a fresh read only after a conflict). Status
    changes are written just before an action that needs its intent on record, and at the end,
    each conditional on the version decided on; timeline entries are posted as Events once their
    status is written, in the background (the next write does not wait for them). Any failure is
    retried by the queue, as after a crash.
    """
    names = queue.names(uid)
    if names is None:
        return
    namespace, name = names
    api = kube.api_client()
    requeue_after: datetime.timedelta | None = MIN_REQUEUE
    try:
        body = queue.body(uid) or await _read(api, queue, namespace, name, uid)
        for _ in range(MAX_CONFLICTS):
            try:
                requeue_after = await _advance(api, queue, body, config, action_log, logger, figures)
                break
            except _Conflict:
                body = await _read(api, queue, namespace, name, uid)
    except _Gone:
        queue.forget(uid)
        return
    except TRANSIENT_ERRORS as e:
        logger.warning(f"reconciling incident {namespace}/{name} failed ({retries.describe(e)}); "
                       f"retrying in {RETRY_AFTER_ERROR.total_seconds():g}s")
        requeue_after = RETRY_AFTER_ERROR
    except Exception as e:  # a bug must not stop the incident for good: try again later
        logger.error(f"reconciling incident {namespace}/{name} failed ({type(e).__name__}); "
                     f"retrying in {RETRY_AFTER_BUG.total_seconds():g}s")
        requeue_after = RETRY_AFTER_BUG
    queue.schedule(uid, None if requeue_after is None else now() + requeue_after)
    if requeue_after is None:
        queue.drop_copy(uid)


async def _read(api: kubernetes.client.ApiClient, queue: IncidentQueue, namespace: str, name: str,
                uid: str) -> dict[str, Any]:
    body = await statuses.read_incident(api, namespace, name)
    if body is None or body["metadata"]["uid"] != uid:
        raise _Gone()
    queue.read(body)
    return body


async def _write_status(api: kubernetes.client.ApiClient, queue: IncidentQueue, body: Mapping[str, Any],
                        status: dict[str, Any], figures: IncidentFigures | None) -> dict[str, Any]:
    meta = body["metadata"]
    fences.admit(body.get("status"))
    try:
        written = await statuses.write_incident_status(api, meta["namespace"], meta["name"], fences.stamped(status),
                                                       resource_version=meta["resourceVersion"])
    except ApiException as e:
        if e.status == 409:
            raise _Conflict() from e
        if e.status == 404:
            raise _Gone() from e
        raise
    queue.wrote(written)
    if figures is not None:
        figures.wrote(body, written)
    return written


async def _advance(api: kubernetes.client.ApiClient, queue: IncidentQueue, body: dict[str, Any],
                   config: OperatorConfig, action_log: guards.ActionLog, logger: Logger,
                   figures: IncidentFigures | None = None) -> datetime.timedelta | None:
    fences.admit(body.get("status"))  # never decide on an incident that a newer leader has taken over
    incident = view_of(body)
    policy = config.policy()
    results: dict[intents.Intent, intents.Result] = {}
    slots: set[str] = set()
    unsaved: list[Any] = []
    dirty = False
    for _ in range(MAX_MOVES):
        world = incidents.World(results=dict(results), rate_limit=action_log.verdict(config.rate_limit(), now()),
                                rate_slots=frozenset(slots))
        decision = incidents.decide(incident, world, now(), policy)
        status = decision.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        incident = dataclasses.replace(incident, status=status)
        unsaved.extend(decision.entries)
        dirty = dirty or decision.changed
        intent = decision.intent
        if intent is not None and intents.takes_rate_slot(intent):
            action_log.record(now())  # now, before any await: the next verdict already counts it
            slots.add(getattr(intent, "step", ""))
        if intent is not None and intents.is_observation(intent):
            results[intent] = await intent_table.carry_out(
                intent_table.Where(api, body, incident.namespace, config), intent)
            continue
        if dirty and (intent is None or intents.needs_intent_on_record(intent)):
            faults.crash_point("before-status-write")
            body = await _write_status(api, queue, body, status, figures)
            faults.crash_point("after-status-write")
            events.post_later(api, body, unsaved, logger)  # the next write does not wait for the Events
            unsaved, dirty = [], False
        if intent is None:
            if figures is not None:
                figures.rate_limited(incident.uid, decision.held_by == guards.RATE_LIMITED)
            if decision.requeue_after is None:
                return None
            return max(decision.requeue_after, MIN_REQUEUE)
        faults.crash_point("before-action")
        result = await intent_table.carry_out(intent_table.Where(api, body, incident.namespace, config), intent)
        faults.crash_point("after-action")
        if isinstance(intent, intents.ClaimTarget):
            # The target as the claim left it (our lock on it), or, after a conflict, as it is now.
            observe = intents.ObserveTarget(intent.step, intent.kind, intent.name)
            if result.succeeded:
                results[observe] = intents.done(result.value)
                continue
            results.pop(observe, None)
            if result.reason == "Conflict":
                continue
        results[intent] = result
    raise RuntimeError(f"no conclusion after {MAX_MOVES} moves")


@dataclasses.dataclass(frozen=True)
class Release:
    """What a deleted Incident's lock release needs, without its body: where, and which targets."""

    namespace: str
    targets: intents.ReleaseTargets | None


def release_of(body: Mapping[str, Any]) -> Release:
    """The target locks a deleted Incident may still hold (its status's claims and its steps' targets)."""
    incident = view_of(body)
    return Release(incident.namespace, incidents.release_on_deletion(incident))


async def release(deleted: Release, logger: Logger) -> None:
    """On deletion: release the target locks the Incident still holds.

    Best effort: a lock that cannot be released now (or whose release the operator missed while it
    was down) is taken over by the next incident on that target, which finds the holder gone.
    """
    release_targets = deleted.targets
    if release_targets is None:
        return
    try:
        result = await workloads.release(kube.api_client(), deleted.namespace, release_targets)
    except TRANSIENT_ERRORS as e:
        result = intents.failed("ApiError", retries.describe(e))
    if result.succeeded:
        logger.info(f"released the locks this incident held among {len(release_targets.targets)} target(s)")
    else:
        logger.warning(f"could not release the target locks ({result.message}); the next incident on a "
                       f"target will find their holder gone and take them over")


WAKEUP_TICK = 0.2


async def run_wakeups(queue: IncidentQueue, run: Run) -> None:
    """Start the reconciliation of each Incident whose wakeup is due, until cancelled."""
    while True:
        for uid in queue.pop_due(now()):
            queue.kick(uid, run)
        await asyncio.sleep(WAKEUP_TICK)
