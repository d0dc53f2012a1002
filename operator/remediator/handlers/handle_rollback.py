"""One reconciliation of a RollbackRequest: ask the engine, record the status, carry out the intent, repeat
(the loop is controller_loop's; this module says how a RollbackRequest is decided, observed and acted on)."""

from __future__ import annotations

import dataclasses
import datetime

import kopf
import kubernetes.client

from remediator import kube
from remediator.actions import fences, jobs, rollouts, workloads
from remediator.config import OperatorConfig
from remediator.engine import intents, rollbacks
from remediator.handlers import controller_loop
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
    await kube.api_classes_loaded()
    request = view_of(body)
    controller = _Controller(kube.api_client(), request.namespace, config.rollback_policy())
    where = controller_loop.Where(controller.api, PLURAL, "rollback", body)
    outcome = await controller_loop.run(where, controller, request, rollbacks.World(), MAX_MOVES, logger)
    match outcome:
        case controller_loop.Settled(decision) if decision.requeue_after is not None:
            ready = next((c for c in decision.status.conditions if c.type == rollbacks.READY), None)
            raise kopf.TemporaryError(ready.message if ready else "waiting",
                                      delay=decision.requeue_after.total_seconds())
        case controller_loop.WriteRefused(error) if error.status == 409:
            # A change meanwhile (or a copy older than the last write): Kopf calls again with a fresh body.
            raise kopf.TemporaryError("the RollbackRequest changed meanwhile; deciding again",
                                      delay=CONFLICT_DELAY) from error
        case controller_loop.WriteRefused(error):
            raise error
        case controller_loop.Exhausted(moves):
            raise kopf.PermanentError(f"no conclusion after {moves} moves")


@dataclasses.dataclass(frozen=True)
class _Controller:
    """How a RollbackRequest is decided, observed and acted on, for controller_loop."""

    api: kubernetes.client.ApiClient
    namespace: str
    policy: rollbacks.Policy

    def decide(self, view: rollbacks.RollbackRequest, world: rollbacks.World) -> rollbacks.Decision:
        return rollbacks.decide(view, world, now(), self.policy)

    def is_observation(self, intent: rollbacks.Intent) -> bool:
        return isinstance(intent, rollbacks.ReadDeployment | intents.ObserveJob)

    async def observe(self, intent: rollbacks.Intent, world: rollbacks.World) -> rollbacks.World:
        match intent:
            case rollbacks.ReadDeployment():
                found = await rollouts.read_deployment(self.api, self.namespace, intent.name)
                return dataclasses.replace(world, deployment=found)
            case intents.ObserveJob():
                return dataclasses.replace(world, job=await jobs.read_job(self.api, self.namespace, intent.name))
        raise TypeError(f"not a read: {intent!r}")

    async def act(self, intent: rollbacks.Intent, world: rollbacks.World) -> rollbacks.World:
        match intent:
            case intents.ScaleTo():
                outcome = await workloads.scale_to(self.api, self.namespace, intent, on_error=rollouts.failure)
            case rollbacks.SetTemplate():
                outcome = await rollouts.set_template(self.api, self.namespace, intent)
            case rollbacks.RunJob():
                outcome = await jobs.run_job(self.api, self.namespace, intent.name, intent.template, intent.owner,
                                             container="migration")
            case _:
                raise TypeError(f"not an action: {intent!r}")
        # What was read before an action is stale after it: the engine reads again when it needs to.
        return rollbacks.World(outcomes={**world.outcomes, intent.step: outcome})
