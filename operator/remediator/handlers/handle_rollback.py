"""One reconciliation of a RollbackRequest: ask the engine, record the status, carry out the intent, repeat."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import kopf
import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import faults, kube
from remediator.actions import events, fences, jobs, rollouts, statuses, workloads
from remediator.config import OperatorConfig
from remediator.engine import intents, rollbacks
from remediator.typedefs import Logger

PLURAL = "rollbackrequests"
# Enough for every step of a rollback many times over; a loop beyond it is a bug, not progress.
MAX_MOVES = 100
TRANSIENT_ERROR_DELAY = 5.0
CONFLICT_DELAY = 0.5


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def view_of(body: kopf.Body) -> rollbacks.RollbackRequest:
    meta = body["metadata"]
    return rollbacks.RollbackRequest(uid=meta["uid"], name=meta["name"], namespace=meta["namespace"],
                                     generation=int(meta.get("generation") or 1),
                                     spec=dict(body.get("spec") or {}), status=dict(body.get("status") or {}))


async def reconcile(body: kopf.Body, config: OperatorConfig, logger: Logger) -> None:
    """Advance the RollbackRequest as far as it can go now.

    Status changes are written just before an action (so the intent is on record first) and at
    the end; timeline entries are posted as Events once their status is written. Waiting (for
    the migration Job, for the rollout) raises kopf.TemporaryError with the engine's delay.
    """
    try:
        await _reconcile(body, config, logger)
    except rollouts.TransientApiError as e:
        raise kopf.TemporaryError(str(e), delay=TRANSIENT_ERROR_DELAY) from e


async def _reconcile(body: kopf.Body, config: OperatorConfig, logger: Logger) -> None:
    fences.admit(body.get("status"))  # never decide on a request that a newer leader has taken over
    api = kube.api_client()
    request = view_of(body)
    policy = config.rollback_policy()
    world = rollbacks.World()
    unsaved: list[Any] = []
    dirty = False
    version = str(body["metadata"]["resourceVersion"])
    for _ in range(MAX_MOVES):
        decision = rollbacks.decide(request, world, now(), policy)
        status = decision.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        request = dataclasses.replace(request, status=status)
        unsaved.extend(decision.entries)
        dirty = dirty or decision.changed
        intent = decision.intent
        if isinstance(intent, rollbacks.ReadDeployment):
            found = await rollouts.read_deployment(api, request.namespace, intent.name)
            world = dataclasses.replace(world, deployment=found)
            continue
        if isinstance(intent, intents.ObserveJob):
            world = dataclasses.replace(world, job=await jobs.read_job(api, request.namespace, intent.name))
            continue
        if dirty:
            version = await _write_status(api, request, status, version)
            await events.post(api, body, unsaved, logger)
            unsaved, dirty = [], False
        if intent is None:
            if decision.requeue_after is not None:
                ready = next((c for c in decision.status.conditions if c.type == rollbacks.READY), None)
                raise kopf.TemporaryError(ready.message if ready else "waiting",
                                          delay=decision.requeue_after.total_seconds())
            return
        faults.crash_point("rollback-before-action")
        outcome = await _act(api, request.namespace, intent)
        faults.crash_point("rollback-after-action")
        # What was read before an action is stale after it: the engine reads again when it needs to.
        world = rollbacks.World(outcomes={**world.outcomes, intent.step: outcome})
    raise kopf.PermanentError(f"no conclusion after {MAX_MOVES} moves")


async def _write_status(api: kubernetes.client.ApiClient, request: rollbacks.RollbackRequest, status: dict[str, Any],
                        version: str) -> str:
    """Write the status on condition that the request is still at `version`; returns the new one.

    A change meanwhile (or a copy older than the last write) makes Kopf call again with a fresh body.
    """
    try:
        written = await statuses.write_status(api, PLURAL, request.namespace, request.name, fences.stamped(status),
                                              resource_version=version)
    except ApiException as e:
        if e.status == 409:
            raise kopf.TemporaryError("the RollbackRequest changed meanwhile; deciding again",
                                      delay=CONFLICT_DELAY) from e
        raise
    return str(written["metadata"]["resourceVersion"])


async def _act(api: kubernetes.client.ApiClient, namespace: str, intent: rollbacks.Action) -> intents.Result:
    if isinstance(intent, intents.ScaleTo):
        return await workloads.scale_to(api, namespace, intent, on_error=rollouts.failure)
    if isinstance(intent, rollbacks.SetTemplate):
        return await rollouts.set_template(api, namespace, intent)
    return await jobs.run_job(api, namespace, intent.name, intent.template, intent.owner, container="migration")
