"""One reconciliation of an Incident: ask the engine, record the status, carry out the intent, repeat."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import kopf
import kubernetes.client

from remediator import API_VERSION, faults, kube
from remediator.actions import (
    database,
    events,
    http,
    jobs,
    pods,
    retries,
    rollback_requests,
    rollouts,
    statuses,
    workloads,
)
from remediator.api.database_steps import DatabaseStep
from remediator.api.jobs import JobTemplate
from remediator.config import OperatorConfig
from remediator.engine import guards, incidents, intents, rollbacks
from remediator.handlers.wakeups import Wakeups
from remediator.typedefs import Logger

# Enough for every step of a long incident; a loop beyond it is a bug, not progress.
MAX_MOVES = 1000
MIN_REQUEUE = datetime.timedelta(seconds=0.5)
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (*retries.API_ERRORS, rollouts.TransientApiError)
TRANSIENT_ERROR_DELAY = 1.0


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def view_of(body: Mapping[str, Any]) -> incidents.Incident:
    meta = body["metadata"]
    created = datetime.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    return incidents.Incident(uid=meta["uid"], name=meta["name"], namespace=meta["namespace"],
                              generation=int(meta.get("generation") or 1), created_at=created,
                              spec=dict(body.get("spec") or {}), status=dict(body.get("status") or {}),
                              annotations=dict(meta.get("annotations") or {}))


async def reconcile(namespace: str, name: str, uid: str, config: OperatorConfig, action_log: guards.ActionLog,
                    wakeups: Wakeups, logger: Logger) -> None:
    """Advance the Incident as far as it can go now; schedule a wakeup when it waits for time to pass.

    Reads the Incident afresh under its lock (Kopf's copy may predate the last reconciliation).
    Status changes are written just before an action (so the intent is on record first)
    and at the end; timeline entries are posted as Events once their status is written.
    """
    api = kube.api_client()
    wakeups.remember(uid, namespace, name)
    async with wakeups.lock(uid):
        body = await statuses.read_incident(api, namespace, name)
        if body is None or body["metadata"]["uid"] != uid:
            wakeups.forget(uid)
            return
        try:
            requeue_after = await _advance(api, body, config, action_log, logger)
        except TRANSIENT_ERRORS as e:
            # The status could not be written even after retries: as after a crash, Kopf tries again.
            raise kopf.TemporaryError(f"the API server failed: {e}", delay=TRANSIENT_ERROR_DELAY) from e
        wakeups.schedule(uid, None if requeue_after is None else now() + requeue_after)


async def _advance(api: kubernetes.client.ApiClient, body: dict[str, Any], config: OperatorConfig,
                   action_log: guards.ActionLog, logger: Logger) -> datetime.timedelta | None:
    incident = view_of(body)
    policy = config.policy()
    results: dict[intents.Intent, intents.Result] = {}
    unsaved: list[Any] = []
    dirty = False
    for _ in range(MAX_MOVES):
        world = incidents.World(results=dict(results), rate_limit=action_log.verdict(config.rate_limit(), now()))
        decision = incidents.decide(incident, world, now(), policy)
        status = decision.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        incident = dataclasses.replace(incident, status=status)
        unsaved.extend(decision.entries)
        dirty = dirty or decision.changed
        intent = decision.intent
        if intent is not None and intents.is_observation(intent):
            results[intent] = await _observe(api, incident.namespace, intent)
            continue
        if dirty:
            faults.crash_point("before-status-write")
            await statuses.write_incident_status(api, incident.namespace, incident.name, status)
            faults.crash_point("after-status-write")
            await events.post(api, body, unsaved, logger)
            unsaved, dirty = [], False
        if intent is None:
            if decision.requeue_after is None:
                return None
            return max(decision.requeue_after, MIN_REQUEUE)
        faults.crash_point("before-action")
        result = await _act(api, body, incident.namespace, intent)
        faults.crash_point("after-action")
        if result.succeeded and intents.changes_workloads(intent):
            action_log.record(now())
        if isinstance(intent, intents.ClaimTarget):
            # Look at the target again: it now shows our claim, or whoever won a concurrent one.
            results.pop(intents.ObserveTarget(intent.step, intent.kind, intent.name), None)
            if result.succeeded or result.reason == "Conflict":
                continue
        results[intent] = result
    raise kopf.PermanentError(f"no conclusion after {MAX_MOVES} moves")


async def release(body: Mapping[str, Any], logger: Logger) -> None:
    """On deletion: release the target locks the Incident still holds."""
    incident = view_of(body)
    claimed = tuple(sorted({(str(s["result"]["target"]["kind"]), str(s["result"]["target"]["name"]))
                            for s in incident.status.get("steps") or []
                            if isinstance((s.get("result") or {}).get("target"), dict) and s["result"].get("claimed")}))
    if claimed:
        result = await workloads.release(kube.api_client(), incident.namespace,
                                         intents.ReleaseTargets(incident.holder, claimed))
        if not result.succeeded:
            raise kopf.TemporaryError(f"could not release the target locks: {result.message}", delay=5)
        logger.info(f"released the locks on {len(claimed)} target(s)")


async def _observe(api: kubernetes.client.ApiClient, namespace: str, intent: intents.Intent) -> intents.Result:
    if isinstance(intent, intents.ObserveTarget):
        return await workloads.observe(api, namespace, intent)
    if isinstance(intent, intents.ObserveJob):
        observed = await jobs.read_job(api, namespace, intent.name)
        return intents.done({"phase": observed.phase.value, "reason": observed.reason, "message": observed.message})
    if isinstance(intent, intents.ObservePods):
        return await pods.observe(api, namespace, intent)
    if isinstance(intent, intents.ObserveRollbackRequest):
        return await rollback_requests.observe(api, namespace, intent)
    assert isinstance(intent, intents.ProbeHttp)
    return await http.probe(intent)


async def _act(api: kubernetes.client.ApiClient, body: Mapping[str, Any], namespace: str,
               intent: intents.Intent) -> intents.Result:
    if isinstance(intent, intents.ClaimTarget):
        return await workloads.claim(api, namespace, intent)
    if isinstance(intent, intents.ReleaseTargets):
        return await workloads.release(api, namespace, intent)
    if isinstance(intent, intents.ScaleTo):
        return await workloads.scale_to(api, namespace, intent)
    if isinstance(intent, intents.RolloutRestart):
        return await workloads.rollout_restart(api, namespace, intent)
    if isinstance(intent, intents.RunJob):
        meta = body["metadata"]
        owner = rollbacks.Owner(API_VERSION, "Incident", meta["name"], meta["uid"])
        template = JobTemplate.model_validate_json(intent.template_json)
        created = await jobs.run_job(api, namespace, rollbacks.RunJob(intent.step, intent.name, template, owner))
        return intents.Result(created.succeeded, reason=created.reason, message=created.message)
    if isinstance(intent, intents.RunDatabaseOperation):
        step = DatabaseStep.model_validate_json(intent.step_json)
        connection = await database.connection_from_secret(api, namespace, step.connection_secret_ref.name,
                                                            step.connection_secret_ref.key)
        if isinstance(connection, intents.Result):
            return connection
        return await database.run(connection, step, dry_run=intent.dry_run)
    if isinstance(intent, intents.DeletePods):
        return await pods.restart(api, namespace, intent)
    if isinstance(intent, intents.EnsureRollbackRequest):
        return await rollback_requests.ensure(api, body, intent)
    assert isinstance(intent, intents.Notify)
    return await http.notify(api, namespace, intent)


WAKEUP_TICK = 0.2


async def run_wakeups(config: OperatorConfig, action_log: guards.ActionLog, wakeups: Wakeups, logger: Logger) -> None:
    """Reconcile each Incident when its wakeup is due, until cancelled; a failed one is retried after 5 s."""
    running: set[asyncio.Task[None]] = set()

    async def wake(uid: str, namespace: str, name: str) -> None:
        try:
            await reconcile(namespace, name, uid, config, action_log, wakeups, logger)
        except Exception as e:  # a wakeup must never kill the scheduler; try again soon
            logger.warning(f"reconciling incident {namespace}/{name} failed ({type(e).__name__}); retrying in 5s")
            wakeups.schedule(uid, now() + datetime.timedelta(seconds=5))

    while True:
        for uid, namespace, name in wakeups.pop_due(now()):
            task = asyncio.create_task(wake(uid, namespace, name))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.sleep(WAKEUP_TICK)
