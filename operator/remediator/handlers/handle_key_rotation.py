"""One reconciliation of a KeyRotation: ask the engine, record the status, carry out the intent, repeat
(the loop is controller_loop's; this module says how a KeyRotation is decided, observed and acted on).

The status is the rotation's write-ahead log: it is written (on condition that the object is still at
the version decided on) before every action, so the intent is on record before anything changes.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import GROUP, VERSION, kube
from remediator.actions import fences, http, key_rotation_roles, retries, secrets, workloads
from remediator.config import OperatorConfig
from remediator.engine import guards, intents
from remediator.engine.key_rotations import moves, stages, views
from remediator.handlers import controller_loop
from remediator.typedefs import Logger

PLURAL = "keyrotations"
# Enough for every stage of a rotation with many consumers; a loop beyond it is a bug, not progress.
MAX_MOVES = 400
RETRY_SECONDS = 2.0
CONFLICT_SECONDS = 0.2


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def view_of(body: dict[str, Any]) -> views.KeyRotation:
    meta = body["metadata"]
    return views.KeyRotation(uid=meta["uid"], name=meta["name"], namespace=meta["namespace"],
                             generation=int(meta.get("generation") or 1),
                             created_at=str(meta.get("creationTimestamp") or ""),
                             spec=dict(body.get("spec") or {}), status=dict(body.get("status") or {}),
                             annotations=dict(meta.get("annotations") or {}))


Carrier = Callable[[kubernetes.client.ApiClient, str, Any, OperatorConfig], Awaitable[intents.Result]]
CARRIERS: dict[type, Carrier] = {
    moves.ReadSecrets: lambda api, ns, intent, config: secrets.read_secrets(api, ns, intent),
    moves.ListKeyRotations: lambda api, ns, intent, config: secrets.list_key_rotations(api, ns),
    moves.ListWorkloads: lambda api, ns, intent, config: secrets.list_workloads(api, ns),
    intents.ProbeHttp: lambda api, ns, intent, config: http.probe(intent, config.allowed_http_hosts),
    moves.StageValues: lambda api, ns, intent, config: secrets.stage_values(api, ns, intent),
    moves.PromoteSecret: lambda api, ns, intent, config: secrets.promote(api, ns, intent),
    moves.RestoreSecret: lambda api, ns, intent, config: secrets.restore(api, ns, intent),
    moves.RevokePrevious: lambda api, ns, intent, config: secrets.revoke(api, ns, intent),
    intents.RolloutRestart: lambda api, ns, intent, config: workloads.rollout_restart(api, ns, intent),
    moves.ObserveRole: lambda api, ns, intent, config: key_rotation_roles.observe(
        api, ns, intent, config.allowed_database_hosts),
    moves.EnsureAlternateUser: lambda api, ns, intent, config: key_rotation_roles.ensure_alternate(
        api, ns, intent, config.allowed_database_hosts),
    moves.SetRolePassword: lambda api, ns, intent, config: key_rotation_roles.set_password(
        api, ns, intent, config.allowed_database_hosts),
    moves.RevokeRoleUser: lambda api, ns, intent, config: key_rotation_roles.revoke(
        api, ns, intent, config.allowed_database_hosts),
}


async def read(namespace: str, name: str) -> dict[str, Any] | None:
    """The KeyRotation as stored now, or None when it is gone."""
    await kube.api_classes_loaded()
    custom = kubernetes.client.CustomObjectsApi(kube.api_client())
    try:
        found: Any = await retries.call(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return dict(found)


async def reconcile(namespace: str, name: str, config: OperatorConfig, action_log: guards.ActionLog,
                    logger: Logger) -> float | None:
    """Advance the KeyRotation as far as it can go now; returns the seconds until it wants to look again
    (None: only when it changes). API failures are retried after a short delay. Its restarts count against
    the operator-wide rate limit (`action_log`), as an Incident's actions do."""
    try:
        return await _reconcile(namespace, name, config, action_log, logger)
    except retries.API_ERRORS as e:
        logger.warning(f"keyrotation {namespace}/{name}: {retries.describe(e)}; trying again in {RETRY_SECONDS:g}s")
        return RETRY_SECONDS


async def _reconcile(namespace: str, name: str, config: OperatorConfig, action_log: guards.ActionLog,
                     logger: Logger) -> float | None:
    api = kube.api_client()
    body = await read(namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    fences.admit(body.get("status"))  # never decide on a rotation that a newer leader has taken over
    controller = _Controller(api, namespace, config, action_log, config.key_rotation_policy())
    world = views.World(rate_limit=action_log.verdict(config.rate_limit(), now()))
    where = controller_loop.Where(api, PLURAL, "keyrotation", body)
    outcome = await controller_loop.run(where, controller, view_of(body), world, MAX_MOVES, logger)
    match outcome:
        case controller_loop.Settled(decision):
            return None if decision.requeue_after is None else decision.requeue_after.total_seconds()
        case controller_loop.WriteRefused(error):  # changed meanwhile (or gone): decide again on a fresh copy
            return CONFLICT_SECONDS if error.status == 409 else None
        case controller_loop.Exhausted():
            return RETRY_SECONDS


@dataclasses.dataclass(frozen=True)
class _Controller:
    """How a KeyRotation is decided, observed and acted on, for controller_loop."""

    api: kubernetes.client.ApiClient
    namespace: str
    config: OperatorConfig
    action_log: guards.ActionLog
    policy: views.Policy

    def decide(self, view: views.KeyRotation, world: views.World) -> stages.Decision:
        return stages.decide(view, world, now(), self.policy)

    def is_observation(self, intent: moves.Intent) -> bool:
        return moves.is_observation(intent)

    async def observe(self, intent: moves.Intent, world: views.World) -> views.World:
        answer = await CARRIERS[type(intent)](self.api, self.namespace, intent, self.config)
        return dataclasses.replace(world, results={**world.results, intent: answer})

    async def act(self, intent: moves.Intent, world: views.World) -> views.World:
        if isinstance(intent, intents.RolloutRestart):
            self.action_log.record(now())  # now, before any await: the next verdict already counts it
        outcome = await CARRIERS[type(intent)](self.api, self.namespace, intent, self.config)
        # What was read before an action is stale after it: the engine reads again when it needs to.
        return views.World(results={intent: outcome},
                           rate_limit=self.action_log.verdict(self.config.rate_limit(), now()))
