"""The `rollback` step: a RollbackRequest owned by the Incident, awaited."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from remediator.api.steps import Step, StepState, StepStatus
from remediator.api.timelines import EventType
from remediator.engine import intents, plans, step_runs


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    return plans.rollback(step, f"{context.incident.name}-{step.name}")


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    assert step.rollback is not None
    name = str(status.result["rollbackRequest"])
    spec = step.rollback.model_dump(by_alias=True, mode="json", exclude_none=True)
    spec["incidentRef"] = {"name": context.incident.name}
    observed = step_runs.create_then_observe(
        context, step, status, "requested",
        intents.EnsureRollbackRequest(step.name, name, json.dumps(spec, sort_keys=True)),
        intents.ObserveRollbackRequest(step.name, name))
    if not isinstance(observed, intents.Result):
        return observed
    request_status = (observed.value or {}).get("status") or {}
    phase = request_status.get("phase")
    if phase == "Complete":
        revisions = {k: request_status[k] for k in ("fromRevision", "toRevision") if k in request_status}
        context.draft.update_step(step.name, result={**context.draft.step(step.name).result, **revisions})
        step_runs.finish(context, step, StepState.SUCCEEDED, "StepSucceeded",
                f"rolled back {step_runs.target_text(step)} from revision {revisions.get('fromRevision')} "
                f"to {revisions.get('toRevision')}")
        return None
    if phase in ("Failed", "Refused"):
        ready: Mapping[str, Any] = next(
            (c for c in request_status.get("conditions") or [] if c.get("type") == "Ready"), {})
        reason = str(ready.get("reason") or "RollbackFailed")
        message = f"RollbackRequest {name}: {ready.get('message') or phase}"
        step_runs.finish(context, step, StepState.FAILED, reason, message)
        if reason == "MigrationRollbackFailed":
            # The app was stopped for the migration rollback and stays stopped: a person must step in now.
            stopped = step_runs.target_text(step)
            context.draft.condition("Escalated", True, reason, f"{stopped} is stopped: {message}",
                                    entry=(EventType.WARNING, "Escalated",
                                           f"escalated: {stopped} is stopped after a failed migration rollback",
                                           step.name))
        return None
    return step_runs.Wait(context.now + step_runs.POLL)


KIND = step_runs.StepKind(plan=plan, advance=advance)
