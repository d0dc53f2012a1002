"""What a step will do, decided before any guard looks at it. Pure.

Guards judge the plan, never the spelling of the spec: `by: -100` and `replicas: 0` are the
same scale to zero, and both wait for approval. A plan is made once per step: a retry carries
out the absolute intent its first attempt recorded (`recorded`), never a fresh plan from what
the first attempt already changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from remediator.api.steps import Step
from remediator.engine import allow_lists, pod_restarts, scaling

DESTRUCTIVE_DATABASE_OPERATIONS = frozenset({"terminate_long_running", "cancel_long_running", "terminate_idle",
                                             "kill_blockers"})


@dataclasses.dataclass(frozen=True)
class Plan:
    """One step's planned effect: for people (`text`, `doing`), for guards, and as recorded intent."""

    text: str  # "scale deployment/web from 3 to 0": follows "would" in a dry run
    doing: str  # "scaling deployment/web from 3 to 0": the running step's message
    destructive: bool
    recorded: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    refused: tuple[str, str] | None = None  # (reason, message): the plan breaks an operator-wide limit


def target_text(kind: str, name: str) -> str:
    return f"{kind.lower()}/{name}"


def scale(step: Step, observed: Mapping[str, Any], kind: str, name: str, previous: Mapping[str, Any],
          max_replicas: int) -> Plan:
    """Scale to the recorded `to` on a retry; else plan from the observed replica count."""
    assert step.scale is not None
    if "to" in previous:
        current, desired = int(previous["from"]), int(previous["to"])
        recorded = {k: previous[k] for k in ("from", "to", "requested", "limitedBy") if k in previous}
        described = f"{target_text(kind, name)} from {current} to {desired}"
    else:
        current = int((observed.get("spec") or {}).get("replicas", 1))
        planned = scaling.plan_scale(step.scale, current)
        desired = planned.desired
        recorded = {"from": current, "to": desired, "requested": planned.requested}
        if planned.limited_by:
            recorded["limitedBy"] = planned.limited_by
        described = planned.describe(kind, name)
    refused = None
    if desired > max_replicas:
        refused = ("TooManyReplicas", f"would scale {target_text(kind, name)} to {desired} replicas, above the "
                                      f"operator's ceiling of {max_replicas} (--max-replicas)")
    # Scaling to zero stops the workload, however the step spells it.
    return Plan(f"scale {described}", f"scaling {described}", destructive=desired == 0 and current > 0,
                recorded=recorded, refused=refused)


def delete_pods(step: Step, pods: list[Mapping[str, Any]], kind: str, name: str, selector: str,
                previous: Mapping[str, Any]) -> Plan:
    """Restart the pods of the recorded snapshot (replacements are never deleted again)."""
    assert step.restart is not None
    snapshot = list(previous["pods"]) if "pods" in previous else [p["uid"] for p in pods if not p["terminating"]]
    budget = pod_restarts.unavailable_budget(step.restart.max_unavailable, len(snapshot))
    every = f"all {len(snapshot)} pod(s) of {target_text(kind, name)} at once"
    some = f"{len(snapshot)} pod(s) of {target_text(kind, name)}, {step.restart.max_unavailable} at a time"
    # Deleting every pod at once is an outage, whatever maxUnavailable says.
    at_once = bool(snapshot) and budget >= len(snapshot)
    described = every if at_once else some
    return Plan(f"restart {described}", f"restarting {described}", destructive=at_once,
                recorded={"mode": "deletePods", "selector": selector, "pods": snapshot})


def rollout_restart(kind: str, name: str, restarted_at: str) -> Plan:
    return Plan(f"restart {target_text(kind, name)} (rollout)", f"restarting {target_text(kind, name)}",
                destructive=False, recorded={"restartedAt": restarted_at})


def rollback(step: Step, request_name: str) -> Plan:
    assert step.rollback is not None
    target = target_text(step.rollback.target.kind, step.rollback.target.name)
    to = f"revision {step.rollback.to_revision}" if step.rollback.to_revision else "the previous revision"
    return Plan(f"roll back {target} to {to}", f"rolling back {target} through RollbackRequest {request_name}",
                destructive=True, recorded={"rollbackRequest": request_name})


def job(step: Step, job_name: str, policy: allow_lists.JobPolicy) -> Plan:
    """A Job is destructive (it runs anything); it is refused outright when the operator's job policy says no."""
    assert step.job is not None
    verdict = allow_lists.job_allowed(step.job.template, policy)
    return Plan(f"run a job with {step.job.template.image}", f"running job/{job_name}", destructive=True,
                recorded={"job": job_name}, refused=None if verdict.proceeds else (verdict.reason, verdict.message))


def database(step: Step, previous: Mapping[str, Any]) -> Plan:
    """A session-ending operation signals the sessions its first attempt listed, on every attempt."""
    assert step.database is not None
    operation = step.database.operation
    recorded = {"plannedTargets": previous["plannedTargets"]} if "plannedTargets" in previous else {}
    return Plan(f"run {operation} on the database", f"running {operation} on the database",
                destructive=operation in DESTRUCTIVE_DATABASE_OPERATIONS, recorded=recorded)


def wait_for_rollout(kind: str, name: str) -> Plan:
    return Plan(f"wait for {target_text(kind, name)} to roll out", f"waiting for {target_text(kind, name)} to roll out",
                destructive=False)


def http_check(step: Step, previous: Mapping[str, Any]) -> Plan:
    check = step.http_check
    assert check is not None
    # Probes are numbered across attempts (each is a new observation); passes count within one attempt.
    return Plan(f"check {check.method} {check.url} for {check.expected_status}",
                f"checking {check.method} {check.url}", destructive=False,
                recorded={"probes": int(previous.get("probes", 0)), "consecutivePasses": 0})


def notify() -> Plan:
    return Plan("send the notification", "sending the notification", destructive=False)
