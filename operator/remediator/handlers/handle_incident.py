"""One reconciliation of an Incident: ask the engine, record the status, carry out the intent, repeat."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import kopf
import kubernetes.client

from remediator import kube
from remediator.actions import events, statuses, workloads
from remediator.config import OperatorConfig
from remediator.engine import incidents, intents
from remediator.typedefs import Logger

# Enough for every step of a long incident; a loop beyond it is a bug, not progress.
MAX_MOVES = 1000


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def view_of(body: kopf.Body) -> incidents.Incident:
    meta = body["metadata"]
    created = datetime.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    return incidents.Incident(uid=meta["uid"], name=meta["name"], namespace=meta["namespace"],
                              generation=int(meta.get("generation") or 1), created_at=created,
                              spec=dict(body.get("spec") or {}), status=dict(body.get("status") or {}))


async def reconcile(body: kopf.Body, config: OperatorConfig, logger: Logger) -> None:
    """Advance the Incident as far as it can go now.

    Status changes are written just before an action (so the intent is on record first)
    and at the end; timeline entries are posted as Events once their status is written.
    """
    api = kube.api_client()
    incident = view_of(body)
    policy = incidents.Policy(dry_run=config.dry_run)
    world = incidents.World(observations={}, outcomes={})
    unsaved: list[Any] = []
    dirty = False
    for _ in range(MAX_MOVES):
        decision = incidents.decide(incident, world, now(), policy)
        status = decision.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        incident = dataclasses.replace(incident, status=status)
        unsaved.extend(decision.entries)
        dirty = dirty or decision.changed
        intent = decision.intent
        if isinstance(intent, intents.ObserveReplicas):
            observed = await workloads.observe_replicas(api, incident.namespace, intent.target)
            world = dataclasses.replace(world, observations={**world.observations, intent.step: observed})
            continue
        if dirty:
            await statuses.write_incident_status(api, incident.namespace, incident.name, status)
            await events.post(api, body, unsaved, logger)
            unsaved, dirty = [], False
        if intent is None:
            return
        outcome = await _act(api, incident.namespace, intent)
        world = dataclasses.replace(world, outcomes={**world.outcomes, intent.step: outcome})
    raise kopf.PermanentError(f"no conclusion after {MAX_MOVES} moves")


async def _act(api: kubernetes.client.ApiClient, namespace: str, intent: intents.Action) -> intents.Outcome:
    return await workloads.scale_to(api, namespace, intent)
