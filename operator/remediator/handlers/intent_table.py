"""Which I/O carries out which intent: one table, one line per intent type.

A new step kind adds its intents and their lines here; nothing else in the handler changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kubernetes.client

from remediator import API_VERSION, kube
from remediator.actions import (
    database,
    fences,
    http,
    jobs,
    key_rotation_requests,
    pods,
    rollback_requests,
    statuses,
    workloads,
)
from remediator.api.database_steps import DatabaseStep
from remediator.api.jobs import JobTemplate
from remediator.config import OperatorConfig
from remediator.engine import allow_lists, intents


@dataclasses.dataclass(frozen=True)
class Where:
    """What every carrier may need: the client, the Incident as last written, its namespace, the policy."""

    api: kubernetes.client.ApiClient
    incident: Mapping[str, Any]
    namespace: str
    config: OperatorConfig


async def _read_job(where: Where, intent: intents.ObserveJob) -> intents.Result:
    observed = await jobs.read_job(where.api, where.namespace, intent.name)
    return intents.done({"phase": observed.phase.value, "reason": observed.reason, "message": observed.message})


async def _run_job(where: Where, intent: intents.RunJob) -> intents.Result:
    meta = where.incident["metadata"]
    owner = intents.Owner(API_VERSION, "Incident", meta["name"], meta["uid"])
    template = JobTemplate.model_validate_json(intent.template_json)
    return await jobs.run_job(where.api, where.namespace, intent.name, template, owner)


async def _run_database_operation(where: Where, intent: intents.RunDatabaseOperation) -> intents.Result:
    step = DatabaseStep.model_validate_json(intent.step_json)
    connection = await database.connection_from_secret(where.api, where.namespace, step.connection_secret_ref.name,
                                                        step.connection_secret_ref.key)
    if isinstance(connection, intents.Result):
        return connection
    verdict = allow_lists.database_hosts_allowed(connection.hosts, where.config.allowed_database_hosts)
    if not verdict.proceeds:
        return intents.failed(verdict.reason, verdict.message)
    return await database.run(connection, step, dry_run=intent.dry_run, only=intent.only)


async def _read_incident(where: Where, intent: intents.ObserveHolder) -> intents.Result:
    return intents.done(await statuses.read_incident(where.api, intent.namespace, intent.name))


async def _read_runbook(where: Where, intent: intents.ObserveRunbook) -> intents.Result:
    return intents.done(await statuses.read_runbook(where.api, intent.namespace, intent.name))


Carrier = Callable[[Where, Any], Awaitable[intents.Result]]
CARRIERS: dict[type, Carrier] = {
    # observations
    intents.ObserveTarget: lambda where, intent: workloads.observe(where.api, where.namespace, intent),
    intents.ObserveHolder: _read_incident,
    intents.ObserveRunbook: _read_runbook,
    intents.ObserveJob: _read_job,
    intents.ObservePods: lambda where, intent: pods.observe(where.api, where.namespace, intent),
    intents.ObserveRollbackRequest: lambda where, intent: rollback_requests.observe(where.api, where.namespace,
                                                                                    intent),
    intents.ProbeHttp: lambda where, intent: http.probe(intent, where.config.allowed_http_hosts),
    intents.ObserveKeyRotation: lambda where, intent: key_rotation_requests.observe(where.api, where.namespace,
                                                                                    intent),
    # actions
    intents.ClaimTarget: lambda where, intent: workloads.claim(where.api, where.namespace, intent),
    intents.ReleaseTargets: lambda where, intent: workloads.release(where.api, where.namespace, intent),
    intents.ScaleTo: lambda where, intent: workloads.scale_to(where.api, where.namespace, intent),
    intents.RolloutRestart: lambda where, intent: workloads.rollout_restart(where.api, where.namespace, intent),
    intents.RunJob: _run_job,
    intents.RunDatabaseOperation: _run_database_operation,
    intents.DeletePods: lambda where, intent: pods.restart(where.api, where.namespace, intent),
    intents.EnsureRollbackRequest: lambda where, intent: rollback_requests.ensure(where.api, where.incident, intent),
    intents.Notify: lambda where, intent: http.notify(where.api, where.namespace, intent,
                                                      where.config.allowed_http_hosts),
    intents.EnsureKeyRotation: lambda where, intent: key_rotation_requests.ensure(where.api, where.incident, intent),
    intents.RequestRotation: lambda where, intent: key_rotation_requests.request(where.api, where.namespace, intent),
}


# The intents carried out by path (retries.request_json) or without the API: every other one has the
# client's API classes loaded (in a thread, once) before its first use, not on the event loop.
BY_PATH: frozenset[type] = frozenset({
    intents.ObserveTarget, intents.ObserveHolder, intents.ObserveRunbook, intents.ProbeHttp,
    intents.ClaimTarget, intents.ReleaseTargets, intents.ScaleTo, intents.RolloutRestart,
})


async def carry_out(where: Where, intent: intents.Intent) -> intents.Result:
    """Observe or act as the intent says; raises the client's errors as the action does.

    Nothing is observed or done once this replica no longer leads (the fence stops it first).
    """
    fences.check()
    if type(intent) not in BY_PATH:
        await kube.api_classes_loaded()
    return await CARRIERS[type(intent)](where, intent)
